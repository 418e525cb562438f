"""Throughput and peak memory of RankingEvaluator against a NumPy argsort evaluator and ranx,
and full ranking at scale (100,000 users x 1,000,000 items) for two scorers.

Comparison. A seeded synthetic stream (default 20,000 users x 50,000 items, float32
scores on a 1/64 grid so ties are common, one boosted target per user, 20 excluded
"seen" items per user) is generated chunk by chunk into one reused buffer. Only the
metric work of each method is timed, per chunk; generating the scores is not. Past 1e9
scores (users x items) the comparison runs on the first 2.5e8 / items users of the
stream (argsort sorts every row: 100,000 x 1,000,000 would take hours), and ranx, which
needs a dict entry per score, on at most 5e6 / items users.

Scale. Every user is ranked against every item (--users x --items, chunks of --chunk
users, by default as many as make a 256 MB score chunk) by two scorers, each in a fresh
child process: "popularity" (one score vector for every user: Zipf-like integer counts,
so many ties; targets drawn by popularity) and "embedding" (dot products of seeded
random --dim float32 user and item embeddings, computed chunk by chunk into the reused
score buffer by NumPy's matmul on one thread; uniform targets). Printed per scorer:
users/s of the evaluator alone and of scoring plus evaluating, and the child's peak RSS
(VmHWM: the whole process, embeddings, score chunk and interpreter included).
peak_mb_1m_items is the larger of the two peaks at 1,000,000 items: of this run when
--items is 1,000,000, else of an extra run of both scorers at 1,000,000 items with
min(--users, 2048) users (the evaluator keeps a few dozen bytes per user, so the peak
hardly depends on the number of users).

    PYTHONPATH=. python perf/evaluator.py [--users 20000] [--items 50000]
    PYTHONPATH=. python perf/evaluator.py --users 100000 --items 1000000   # minutes

Comparison peak memory is peak RSS (VmHWM, reset through /proc/self/clear_refs; Linux
only) above the RSS right before the loop, measured in a fresh child process per run so
that no earlier run's freed heap hides allocations; peak_mb includes the final
summary(). torch allocations are invisible to tracemalloc, hence RSS. The caller-owned
score chunk exists before the loop and is not counted. Ends with one line:
speedup_vs_argsort=X speedup_vs_ranx=Y peak_mb=Z peak_mb_1m_items=W
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np

from benchmark.eval import RankingEvaluator
from rss import reset_peak, rss_kb  # perf/rss.py: this script's folder is on sys.path

METRICS = ["HR@10", "NDCG@10", "MRR@10"]
N_EXCLUDED = 20
TARGET_BOOST = 3.5  # puts the target around rank 10, so @10 metrics are not all 0 or 1
GRID = 64.0  # scores are multiples of 1/64: many ties, as with quantized models
SCORERS = ("popularity", "embedding")
MILLION = 1_000_000
COMPARE_SCORES = 10**9  # past this many scores the comparison runs on a prefix of users...
ARGSORT_SCORES = 250_000_000  # ...with this many scores (argsort: ~0.1 s per 1M-item row)
RANX_SCORES = 5_000_000  # ranx's dict entries at most (100 users x 50,000 items by default)
PEAK_USERS = 2048  # users of the extra 1M-items runs when --items is not 1M


def stream(n_users: int, n_items: int, chunk: int, seed: int) -> Iterator[tuple]:
    """Yield (users, scores, targets, exclude) chunks; `scores` is one buffer reused for every chunk."""
    rng = np.random.default_rng(seed)
    buf = np.empty((chunk, n_items), dtype=np.float32)
    for start in range(0, n_users, chunk):
        n = min(chunk, n_users - start)
        scores = buf[:n]
        rng.standard_normal(out=scores, dtype=np.float32)
        targets = rng.integers(0, n_items, n)
        scores[np.arange(n), targets] += TARGET_BOOST
        scores *= GRID
        np.rint(scores, out=scores)
        scores /= GRID
        exclude = list(rng.integers(0, n_items, (n, N_EXCLUDED)))
        yield np.arange(start, start + n), scores, targets, exclude


def default_chunk(n_items: int) -> int:
    """Users per score chunk: 256 MB of float32 scores, at most 256 users."""
    return max(1, min(256, (1 << 26) // max(n_items, 1)))


def scale_chunks(scorer: str, n_users: int, n_items: int, chunk: int, seed: int, dim: int) -> Iterator[tuple]:
    """(users, scores, targets, exclude, seconds spent scoring) per chunk of a full ranking;
    `scores` is one buffer reused for every chunk, so memory does not grow with users."""
    rng = np.random.default_rng(seed)
    buf = np.empty((min(chunk, n_users), n_items), dtype=np.float32)
    if scorer == "popularity":
        counts = np.floor(n_items / (rng.permutation(n_items) + 1.0))  # Zipf-like: many items tie
        popularity = counts.astype(np.float32)
        targets = rng.choice(n_items, n_users, p=counts / counts.sum())  # popular items are hit more
    else:
        item_vectors = rng.standard_normal((n_items, dim), dtype=np.float32)
        user_vectors = rng.standard_normal((n_users, dim), dtype=np.float32)
        targets = rng.integers(0, n_items, n_users)
    for start in range(0, n_users, chunk):
        n = min(chunk, n_users - start)
        scores = buf[:n]
        began = time.perf_counter()
        if scorer == "popularity":
            scores[:] = popularity  # a model's answer: one row per user, the same for all
        else:
            np.matmul(user_vectors[start:start + n], item_vectors.T, out=scores)
        seconds = time.perf_counter() - began
        exclude = list(rng.integers(0, n_items, (n, N_EXCLUDED)))
        yield np.arange(start, start + n), scores, targets[start:start + n], exclude, seconds


def child_scale(scorer: str, n_users: int, n_items: int, chunk: int, seed: int, dim: int) -> None:
    """Full ranking by one scorer in this fresh process; print its seconds and peak RSS
    (VmHWM) as JSON."""
    warm = RankingEvaluator(METRICS)  # page in code: it is not data
    for u, s, t, ex, _ in scale_chunks(scorer, 8, 1000, 8, 99, dim):
        warm.add(u, s, t, exclude=ex)
    warm.summary()
    ev, score_seconds, eval_seconds, done = RankingEvaluator(METRICS), 0.0, 0.0, 0
    for u, s, t, ex, seconds in scale_chunks(scorer, n_users, n_items, chunk, seed, dim):
        began = time.perf_counter()
        ev.add(u, s, t, exclude=ex)
        eval_seconds += time.perf_counter() - began
        score_seconds += seconds
        if (done + len(u)) * 10 // n_users > done * 10 // n_users:  # progress every 10%
            print(f"  {scorer}: {done + len(u):,} of {n_users:,} users", file=sys.stderr, flush=True)
        done += len(u)
    began = time.perf_counter()
    summary = ev.summary()
    eval_seconds += time.perf_counter() - began
    print(json.dumps({"score_seconds": score_seconds, "eval_seconds": eval_seconds,
                      "peak_mb": rss_kb("VmHWM") / 1024, "summary": summary}))


def measure_scale(scorer: str, n_users: int, n_items: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", scorer, "--users", str(n_users), "--items", str(n_items),
           "--chunk", str(args.chunk or default_chunk(n_items)), "--seed", str(args.seed),
           "--dim", str(args.dim)]  # fmt: skip
    # One BLAS thread: idle BLAS threads spin after each matmul and take the core the
    # evaluator needs (2 cores: half its speed), and the machine is shared.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def ours(chunks: Iterator[tuple]) -> tuple[float, int, dict[str, float]]:
    ev = RankingEvaluator(METRICS)
    seconds, users = 0.0, 0
    for u, s, t, ex in chunks:
        t0 = time.perf_counter()
        ev.add(u, s, t, exclude=ex)
        seconds += time.perf_counter() - t0
        users += len(u)
    t0 = time.perf_counter()
    summary = ev.summary()
    seconds += time.perf_counter() - t0
    return seconds, users, summary


def argsort_chunk(s: np.ndarray, t: np.ndarray, ex: list[np.ndarray]) -> np.ndarray:
    """Plain evaluator: mask a copy, argsort each row, read off the target's 1-based rank."""
    n = len(t)
    masked = s.copy()
    rows = np.repeat(np.arange(n), [len(e) for e in ex])
    cols = np.concatenate(ex)
    keep = cols != t[rows]
    masked[rows[keep], cols[keep]] = -np.inf
    order = np.argsort(-masked, axis=1)
    return np.argmax(order == t[:, None], axis=1) + 1


def argsort_metrics(ranks: np.ndarray) -> dict[str, float]:
    hit = ranks <= 10
    return {
        "HR@10": float(hit.mean()),
        "NDCG@10": float(np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0).mean()),
        "MRR@10": float(np.where(hit, 1.0 / ranks, 0.0).mean()),
    }


def argsort(chunks: Iterator[tuple]) -> tuple[float, int, dict[str, float]]:
    seconds, ranks = 0.0, []
    for _, s, t, ex in chunks:
        t0 = time.perf_counter()
        ranks.append(argsort_chunk(s, t, ex))
        seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    all_ranks = np.concatenate(ranks)
    result = argsort_metrics(all_ranks)
    seconds += time.perf_counter() - t0
    return seconds, len(all_ranks), result


def ranx_run(s: np.ndarray, t: np.ndarray, ex: list[np.ndarray], item_ids: list[str]) -> tuple[float, float, float, dict]:
    """Returns (dict-building s, Qrels/Run construction s (ranx sorts here), evaluate s, metrics)."""
    from ranx import Qrels, Run, evaluate

    t0 = time.perf_counter()
    qrels, run = {}, {}
    for i in range(len(t)):
        drop = set(ex[i].tolist()) - {int(t[i])}
        row = dict(zip(item_ids, s[i].tolist()))
        for j in drop:
            del row[item_ids[j]]
        qrels[f"u{i}"] = {item_ids[t[i]]: 1}
        run[f"u{i}"] = row
    t1 = time.perf_counter()
    q, r = Qrels(qrels), Run(run)
    t2 = time.perf_counter()
    res = evaluate(q, r, ["hit_rate@10", "ndcg@10", "mrr@10"])
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, {"HR@10": res["hit_rate@10"], "NDCG@10": res["ndcg@10"], "MRR@10": res["mrr@10"]}


def child_peak(method: str, n_users: int, n_items: int, chunk: int, seed: int) -> None:
    """Run one method in this fresh process; print its peak RSS growth (MB) as JSON."""
    (ours if method == "ours" else argsort)(stream(8, n_items, 8, seed=99))  # page in code: it is not data
    chunks = stream(n_users, n_items, chunk, seed)
    first = next(chunks)  # allocates and touches the caller-owned score buffer
    base = reset_peak()
    ev, ranks = RankingEvaluator(METRICS), []
    for u, s, t, ex in itertools.chain([first], chunks):
        if method == "ours":
            ev.add(u, s, t, exclude=ex)
        else:
            ranks.append(argsort_chunk(s, t, ex))
    loop_mb = (rss_kb("VmHWM") - base) / 1024
    ev.summary() if method == "ours" else argsort_metrics(np.concatenate(ranks))
    print(json.dumps({"loop_mb": loop_mb, "total_mb": (rss_kb("VmHWM") - base) / 1024}))


def measure_peak(method: str, n_users: int, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", method, "--users", str(n_users), "--items", str(args.items),
           "--chunk", str(args.chunk or default_chunk(args.items)), "--seed", str(args.seed)]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--chunk", type=int, default=None,
                   help="users per score chunk (default: 256 MB of scores, at most 256 users)")
    p.add_argument("--ranx-users", type=int, default=100)
    p.add_argument("--dim", type=int, default=64, help="embedding size of the embedding scorer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", choices=["ours", "argsort", *SCORERS], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child in SCORERS:
        child_scale(args.child, args.users, args.items, args.chunk, args.seed, args.dim)
        return
    if args.child:
        child_peak(args.child, args.users, args.items, args.chunk, args.seed)
        return

    m, c = args.items, args.chunk or default_chunk(args.items)
    # The comparison: every user, unless argsort would take too long (see the docstring).
    n = args.users if args.users * m <= COMPARE_SCORES else min(args.users, max(c, ARGSORT_SCORES // m))
    load_before = os.getloadavg()[0]
    print(f"stream: {n:,} users x {m:,} items, float32 scores on a 1/{GRID:g} grid, {N_EXCLUDED} excluded items/user,")
    print(f"        chunks of {c} users ({c * m * 4 / 2**20:.0f} MB each), seed {args.seed}; "
          "timings exclude score generation")  # fmt: skip

    # Warm-up (first-call costs: torch kernels, prefix tables, numba compilation for ranx).
    warm = list(stream(8, m, 8, seed=99))
    ours(iter(warm))
    argsort(iter(warm))
    item_ids = [str(i) for i in range(m)]
    ranx_run(warm[0][1][:2], warm[0][2][:2], warm[0][3][:2], item_ids)

    # One pass over the stream; both methods time their work on the same chunk, in
    # alternating order, so load from other processes on this shared machine hits both.
    ev, ranks = RankingEvaluator(METRICS), []
    runners = {"ours": ev.add, "argsort": lambda u, s, t, ex: ranks.append(argsort_chunk(s, t, ex))}
    secs = dict.fromkeys(runners, 0.0)
    for i, (u, s, t, ex) in enumerate(stream(n, m, c, args.seed)):
        for name in list(runners)[:: 1 if i % 2 else -1]:
            start = time.perf_counter()
            runners[name](u, s, t, ex)
            secs[name] += time.perf_counter() - start
    results = {}
    for name, final in [("ours", ev.summary), ("argsort", lambda: argsort_metrics(np.concatenate(ranks)))]:
        start = time.perf_counter()
        results[name] = final()
        secs[name] += time.perf_counter() - start
    ups = {name: n / sec for name, sec in secs.items()}

    # ranx needs dict-of-dicts input (one str->float entry per item), so the full stream
    # (1e9 entries) is infeasible: it runs on the first --ranx-users users of the stream
    # (fewer when that would exceed RANX_SCORES entries).
    k = min(args.ranx_users, n, max(1, RANX_SCORES // m))
    _, sub_scores, sub_targets, sub_exclude = next(stream(k, m, k, args.seed))
    rx_dict, rx_build, rx_eval, m_rx = ranx_run(sub_scores, sub_targets, sub_exclude, item_ids)
    _, _, m_sub = ours(iter([(np.arange(k), sub_scores, sub_targets, sub_exclude)]))
    _, _, m_arg_sub = argsort(iter([(None, sub_scores, sub_targets, sub_exclude)]))
    ups_rx, ups_rx_all = k / (rx_build + rx_eval), k / (rx_dict + rx_build + rx_eval)

    peaks = {users: measure_peak("ours", users, args) for users in sorted({max(1, n // 4), n})}
    peak_arg = measure_peak("argsort", n, args)

    # Full ranking at scale, one fresh process per scorer (minutes at 100,000 x 1,000,000).
    print(f"full ranking: {args.users:,} users x {m:,} items, scorers {', '.join(SCORERS)}", file=sys.stderr)
    scale = {scorer: measure_scale(scorer, args.users, m, args) for scorer in SCORERS}
    if m == MILLION:
        at_million, million_users = scale, args.users
    else:
        million_users = min(args.users, PEAK_USERS)
        print(f"peak memory at 1,000,000 items: {million_users:,} users", file=sys.stderr)
        at_million = {scorer: measure_scale(scorer, million_users, MILLION, args) for scorer in SCORERS}
    peak_million = max(r["peak_mb"] for r in at_million.values())

    vs_arg, vs_rx = ups["ours"] / ups["argsort"], ups["ours"] / ups_rx
    print("\nthroughput (metric computation only; all three count on one core: RankingEvaluator")
    print("  runs torch single-threaded by design, NumPy's argsort and ranx's sort are single-threaded)")
    print(f"  RankingEvaluator                  {ups['ours']:>10,.0f} users/s  ({secs['ours']:.2f} s for {n:,} users)")
    print(f"  NumPy argsort                     {ups['argsort']:>10,.0f} users/s  ({secs['argsort']:.2f} s)")
    print(f"  ranx, first {k} users             {ups_rx:>10,.1f} users/s  (Qrels/Run build, which sorts, "
          f"{rx_build:.2f} s + evaluate {rx_eval:.2f} s)")  # fmt: skip
    print(f"  ranx incl. numpy->dict conversion {ups_rx_all:>10,.1f} users/s  (+{rx_dict:.2f} s building dicts)")
    print(f"  speedup: {vs_arg:.1f}x vs argsort; {vs_rx:,.0f}x vs ranx build+evaluate "
          f"({ups['ours'] / ups_rx_all:,.0f}x counting its dict input)")  # fmt: skip

    print("\nmetric means (ours: expected value over ties; argsort/ranx: one arbitrary tie order)")
    print(f"  {'':26}" + "".join(f"{name:>10}" for name in METRICS))
    rows = [(f"ours, {n:,} users", results["ours"]), (f"argsort, {n:,} users", results["argsort"]),
            (f"ours, first {k} users", m_sub), (f"argsort, first {k} users", m_arg_sub),
            (f"ranx, first {k} users", m_rx)]  # fmt: skip
    for label, vals in rows:
        print(f"  {label:26}" + "".join(f"{vals[name]:>10.4f}" for name in METRICS))

    print("\npeak memory: growth of peak RSS (VmHWM), a fresh process per run; during the add() loop / including")
    print("  the final summary (which builds the per-user table: per-user results are O(users) by design)")
    for users, mb in peaks.items():
        print(f"  RankingEvaluator, {users:>6,} users: {mb['loop_mb']:7.1f} MB / {mb['total_mb']:7.1f} MB")
    print(f"  NumPy argsort,    {n:>6,} users: {peak_arg['loop_mb']:7.1f} MB / {peak_arg['total_mb']:7.1f} MB")
    print(f"  (not counted: the caller-owned {c * m * 4 / 2**20:.0f} MB score chunk that every method reads)")

    print(f"\nfull ranking, {args.users:,} users x {m:,} items, chunks of {c} users ({c * m * 4 / 2**20:.0f} MB of "
          f"scores), a fresh process per scorer;")
    print("  users/s of the evaluator alone (one core) and of scoring + evaluating; peak RSS of the whole process")
    print(f"  {'scorer':12}{'evaluator':>14}{'score+eval':>14}{'score s':>10}{'eval s':>10}{'peak MB':>10}"
          + "".join(f"{name:>10}" for name in METRICS))
    for scorer, r in scale.items():
        print(f"  {scorer:12}{args.users / r['eval_seconds']:>14,.0f}"
              f"{args.users / (r['eval_seconds'] + r['score_seconds']):>14,.0f}{r['score_seconds']:>10.1f}"
              f"{r['eval_seconds']:>10.1f}{r['peak_mb']:>10.0f}"
              + "".join(f"{r['summary'][name]:>10.4f}" for name in METRICS))
    if m != MILLION:
        print(f"  at 1,000,000 items ({million_users:,} users): peak "
              + ", ".join(f"{scorer} {r['peak_mb']:.0f} MB" for scorer, r in at_million.items()))
    print(f"  (embedding scorer: {args.dim}-dim float32 vectors, scores by NumPy's matmul on one thread)")

    print(f"\nload average (1 min) before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} "
          "cores (a shared machine: absolute rates vary with other load, ratios much less)")  # fmt: skip
    print(f"speedup_vs_argsort={vs_arg:.1f} speedup_vs_ranx={vs_rx:.0f} peak_mb={peaks[n]['total_mb']:.1f} "
          f"peak_mb_1m_items={peak_million:.0f}")

if __name__ == "__main__":
    main()
