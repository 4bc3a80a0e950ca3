"""Scheduling under load: SDPA time of libdiffattn and torch, quiet and with one busy background
process (a spin loop), in the same run, alternating calls. Needs torch.

    python examples/python/bench_busy.py [--threads 2] [--repeats 7]

Prints per shape: each library's median ms quiet and busy, its slowdown (busy/quiet), and
torch/ours in both conditions. Dynamic task claiming should keep our slowdown ≤ torch's.
"""

import argparse
import multiprocessing
import statistics
import time

import numpy as np

import diffattn


def spin(stop):
    while not stop.is_set():
        pass


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    opts = parser.parse_args()
    import torch
    torch.set_num_threads(opts.threads)
    diffattn.set_num_threads(opts.threads)
    rng = np.random.default_rng(0)
    print(f"threads {opts.threads}, median of {opts.repeats}; torch {torch.__version__}")
    print(f"{'SDPA (B,H,N,D)':<22}{'torch q':>9}{'torch b':>9}{'ours q':>9}{'ours b':>9}"
          f"{'torch ×':>9}{'ours ×':>9}{'t/o q':>8}{'t/o b':>8}")
    for b, h, n, d in [(2, 8, 1024, 64), (2, 8, 2048, 40)]:
        q, k, v = (rng.standard_normal((b, h, n, d)).astype(np.float32) for _ in range(3))
        tq, tk, tv = map(torch.from_numpy, (q, k, v))
        run_torch = lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
        run_ours = lambda: diffattn.scaled_dot_product_attention(q, k, v)
        quiet_t, quiet_o, busy_t, busy_o = [], [], [], []
        for _ in range(3):   # alternate conditions so that drift hits both
            quiet_t.append(median_ms(run_torch, opts.repeats)); quiet_o.append(median_ms(run_ours, opts.repeats))
            stop = multiprocessing.Event()
            spinner = multiprocessing.Process(target=spin, args=(stop,))
            spinner.start()
            time.sleep(0.05)
            busy_t.append(median_ms(run_torch, opts.repeats)); busy_o.append(median_ms(run_ours, opts.repeats))
            stop.set(); spinner.join()
        qt, qo, bt, bo = (statistics.median(x) for x in (quiet_t, quiet_o, busy_t, busy_o))
        print(f"{str((b, h, n, d)):<22}{qt:>9.1f}{bt:>9.1f}{qo:>9.1f}{bo:>9.1f}{bt / qt:>9.2f}{bo / qo:>9.2f}"
              f"{qt / qo:>8.2f}{bt / bo:>8.2f}")


if __name__ == "__main__":
    main()
