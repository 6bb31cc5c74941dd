using System.Diagnostics;
using System.Security.Cryptography;
using Sextant.Core.Tests.Storage;

namespace Sextant.Bench;

/// <summary>
/// Uploads and downloads one large artifact (default 1 GiB) through a child server process and reports
/// throughput and the server's peak resident memory (VmHWM): a streamed path keeps it flat.
/// </summary>
internal static class ArtifactStreamingBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var megabytes = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1024;
        var port = FreePort.Next();
        var folder = Path.Combine(Path.GetTempPath(), "sextant-artifact-" + Guid.NewGuid().ToString("N")[..8]);
        using var server = Process.Start(new ProcessStartInfo("dotnet", $"exec \"{cli}\" server --port {port} --data {folder}") { RedirectStandardOutput = true, UseShellExecute = false })!;
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(30) };
            while (true)
            {
                try
                {
                    if ((await http.GetAsync("/readyz")).IsSuccessStatusCode)
                    {
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(50);
                }
            }
            var length = megabytes * 1024L * 1024L;
            var source = new PatternStream(length);
            var clock = Stopwatch.StartNew();
            byte[] expected;
            using (var content = new StreamContent(source, 1 << 20))
            {
                (await http.PutAsync("/api/2.0/mlflow-artifacts/artifacts/0/bench/artifacts/big.bin", content)).EnsureSuccessStatusCode();
                expected = source.Sha256();
            }
            var upload = clock.Elapsed;
            clock.Restart();
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long received = 0;
            await using (var stream = await http.GetStreamAsync("/api/2.0/mlflow-artifacts/artifacts/0/bench/artifacts/big.bin"))
            {
                var buffer = new byte[1 << 20];
                int read;
                while ((read = await stream.ReadAsync(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    received += read;
                }
            }
            var download = clock.Elapsed;
            var same = hash.GetHashAndReset().SequenceEqual(expected);
            var status = await File.ReadAllLinesAsync($"/proc/{server.Id}/status");
            var peak = status.First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            Console.WriteLine($"{megabytes} MiB: upload {megabytes / upload.TotalSeconds:N0} MiB/s, download {megabytes / download.TotalSeconds:N0} MiB/s, identical {same && received == length}, server peak RSS {peak.Split(':')[1].Trim()}");
            return same ? 0 : 1;
        }
        finally
        {
            // Also when the run fails half way: no server is left behind.
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>A deterministic, non-repeating byte stream of a given length that is never held in memory.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        private byte[]? _sha256;

        /// <summary>The SHA-256 of everything read, known once the stream has been read to its end.</summary>
        public byte[] Sha256() => _sha256 ?? throw new InvalidOperationException("The stream was not read to its end.");

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                var p = _position + i;
                buffer[offset + i] = (byte)((p * 2654435761L) >> 13);
            }
            _hash.AppendData(buffer, offset, n);
            _position += n;
            if (_position == length && _sha256 is null)
            {
                _sha256 = _hash.GetHashAndReset();
            }
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
