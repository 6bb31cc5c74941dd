// Small browser helpers for the Sextant UI: theme preference and clipboard.
window.sextant = {
    getTheme: function () {
        var saved = localStorage.getItem('sextant-theme');
        if (saved) { return saved; }
        return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
    },
    setTheme: function (theme) { localStorage.setItem('sextant-theme', theme); },
    copy: function (text) { return navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.resolve(); }
};
