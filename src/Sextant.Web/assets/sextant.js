// Small browser helpers for the Sextant UI: theme preference, clipboard, and drawing charts with plotly.js.
(function () {
    var plotlyLoading = null;

    // plotly.js (the basic bundle: scatter, lines, bars) is loaded once, on the first page that draws a chart.
    function ensurePlotly() {
        if (window.Plotly) { return Promise.resolve(); }
        if (!plotlyLoading) {
            plotlyLoading = new Promise(function (resolve, reject) {
                var script = document.createElement('script');
                script.src = '_content/Plotly.Blazor/plotly-basic-3.7.0.min.js';
                script.onload = function () { resolve(); };
                script.onerror = function () { plotlyLoading = null; reject(new Error('could not load plotly.js')); };
                document.head.appendChild(script);
            });
        }
        return plotlyLoading;
    }

    window.sextant = {
        getTheme: function () {
            var saved = localStorage.getItem('sextant-theme');
            if (saved) { return saved; }
            return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
        },
        setTheme: function (theme) { localStorage.setItem('sextant-theme', theme); },
        copy: function (text) { return navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.resolve(); },

        // Draws (or redraws in place) a chart into an element the page owns.
        plot: function (element, traces, layout) {
            return ensurePlotly().then(function () {
                if (!element.isConnected) { return; }
                return window.Plotly.react(element, traces, layout, { responsive: true, displaylogo: false });
            });
        },
        unplot: function (element) {
            if (window.Plotly && element) { window.Plotly.purge(element); }
        }
    };
})();
