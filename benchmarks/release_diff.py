"""Blue-green comparison of two 1M-row Silver-like tables: lakeops keyed_diff vs pandas merge vs datacompy.

Targets: datacompy / lakeops >= 5 and lakeops / pandas outer merge <= 1.5. Each method runs in its own
subprocess (so the peak memory is the method's own), loads the two parquet files first and times only
the comparison, best of --repeat runs. datacompy pins pandas < 3.1, so it runs in a virtualenv of its
own under .lakeops/bench/, created on the first run.

    .venv/bin/python benchmarks/release_diff.py [--rows 1000000] [--repeat 3]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = ["year", "month", "day", "carrier", "flight", "origin", "sched_dep_time"]
ROOT = Path(__file__).resolve().parents[1]
DATACOMPY_VENV = ROOT / ".lakeops" / "bench" / "venv-datacompy"
METHODS = ("lakeops", "pandas merge", "datacompy")
CARRIERS = ["9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"]


def generate(rows: int, seed: int = 13):  # noqa: ANN201 - numpy and pyarrow are imported here, not in the workers
    """Blue and green: 0.1% of rows only in each, ~1% of the shared rows changed in one or two columns."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    extra = rows // 1000
    radix = (12, 28, len(CARRIERS), 2000, 3, 1440)  # month, day, carrier, flight, origin, minute: a unique key
    ids = rng.permutation(np.unique(rng.integers(0, int(np.prod(radix)), int(rows * 1.1)))[: rows + extra])
    parts = []
    for base in reversed(radix):
        ids, part = np.divmod(ids, base)
        parts.append(part)
    minute, origin, flight, carrier, day, month = parts
    n, sched = len(minute), minute // 60 * 100 + minute % 60
    gone = rng.random(n) < 0.02  # cancelled flights: no times, no delays
    dep_delay = np.round(rng.normal(10, 30, n), 1)
    flight_date = (np.datetime64("2013-01") + month).astype("datetime64[D]") + day
    utc_us = pa.timestamp("us", "UTC")
    pick = lambda values, at, mask=None: pa.array(np.asarray(values)[at], pa.string(), mask=mask)  # noqa: E731
    full = pa.table(
        {
            "flight_date": pa.array(flight_date, pa.date32()),
            "year": pa.array(np.full(n, 2013)),
            "month": pa.array(month + 1),
            "day": pa.array(day + 1),
            "dep_time": pa.array(sched + 5, mask=gone),
            "sched_dep_time": pa.array(sched),
            "dep_delay": pa.array(dep_delay, mask=gone),
            "arr_time": pa.array((sched + 230) % 2400, mask=gone),
            "sched_arr_time": pa.array((sched + 220) % 2400),
            "arr_delay": pa.array(np.round(dep_delay + rng.normal(0, 10, n), 1), mask=gone),
            "carrier": pick(CARRIERS, carrier),
            "flight": pa.array(flight + 1),
            "tailnum": pick([f"N{i:04d}" for i in range(4000)], rng.integers(0, 4000, n), rng.random(n) < 0.01),
            "origin": pick(["EWR", "JFK", "LGA"], origin),
            "dest": pick([f"D{i:02d}" for i in range(100)], rng.integers(0, 100, n)),
            "air_time": pa.array(np.round(rng.uniform(20, 600, n), 1), mask=gone),
            "distance": pa.array(rng.integers(80, 5000, n)),
            "hour": pa.array(sched // 100),
            "minute": pa.array(sched % 100),
            "time_hour": pa.array(
                (flight_date + sched // 100 * np.timedelta64(1, "h")).astype("datetime64[us]"), utc_us
            ),
            "_batch_id": pick([f"batch-2013-{m:02d}" for m in range(1, 13)], month),
            "_bronze_snapshot_id": pa.array(rng.integers(1, 2**62, n)),
        }
    )
    blue, green = full.slice(0, rows), full.slice(extra)  # the first `extra` only in blue, the last only in green
    changed = np.flatnonzero(rng.random(rows - extra) < 0.01)
    arr_delay = green["arr_delay"].to_numpy().copy()  # NaN where null: a changed null becomes 0.5
    arr_delay[changed] = np.nan_to_num(arr_delay[changed]) + 0.5
    dest = np.array(green["dest"].to_pylist(), dtype=object)
    dest[changed[rng.random(len(changed)) < 0.3]] = "XXX"  # 30% of them in a second column
    for name, values in (("arr_delay", pa.array(arr_delay, mask=np.isnan(arr_delay))), ("dest", pa.array(dest))):
        green = green.set_column(green.schema.get_field_index(name), name, values)
    return blue, green.take(rng.permutation(green.num_rows)), len(changed)


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def best_of(repeat: int, compare):  # noqa: ANN001, ANN201
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = compare()
        seconds.append(time.perf_counter() - started)
    return min(seconds), seconds, result


def worker(method: str, folder: Path, repeat: int) -> dict:
    """Load the two files, then time only the comparison; its counts: only_blue, only_green, changed."""
    import pyarrow.parquet as pq

    blue, green = pq.read_table(folder / "blue.parquet"), pq.read_table(folder / "green.parquet")
    figures = {}
    if method == "lakeops":
        from lakeops.release.diff import keyed_diff
        from lakeops.release.fingerprint import fingerprint

        baseline = rss_mb()
        best, runs, diff = best_of(repeat, lambda: keyed_diff(blue, green, KEY))
        counts = [diff.only_blue, diff.only_green, diff.changed]
        figures["fingerprint_s"] = best_of(repeat, lambda: fingerprint(blue))[0]
    else:
        blue, green = blue.to_pandas(), green.to_pandas()
        baseline = rss_mb()
        if method == "pandas merge":
            import pandas as pd

            best, runs, merged = best_of(repeat, lambda: pd.merge(blue, green, how="outer", on=KEY, indicator=True))
            counts = merged_counts(merged, [c for c in blue.columns if c not in KEY])
            figures["hash_pandas_object_s"] = best_of(repeat, lambda: pd.util.hash_pandas_object(blue, index=False))[0]
        else:
            import datacompy

            best, runs, compare = best_of(repeat, lambda: datacompy.PandasCompare(blue, green, join_columns=KEY))
            changed = len(compare.intersect_rows) - int(compare.count_matching_rows())
            counts = [len(compare.df1_unq_rows), len(compare.df2_unq_rows), changed]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": best, "runs": runs, "peak_mb": peak, "baseline_mb": baseline, "counts": counts, **figures}


def merged_counts(merged, columns: list[str]) -> list[int]:  # noqa: ANN001
    """Rows only on each side, and shared rows with a value that differs (null equals null), exactly."""
    both = merged[merged["_merge"] == "both"]
    differs = False
    for column in columns:
        x, y = both[f"{column}_x"], both[f"{column}_y"]
        differs = differs | ~((x == y).fillna(False).astype(bool) | (x.isna() & y.isna()))
    sides = merged["_merge"].value_counts()
    return [int(sides["left_only"]), int(sides["right_only"]), int(differs.sum())]


def datacompy_python() -> Path:
    python = DATACOMPY_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {DATACOMPY_VENV.relative_to(ROOT)} for datacompy (first run only)")
        subprocess.run([sys.executable, "-m", "venv", str(DATACOMPY_VENV)], check=True)
        install = ["-m", "pip", "install", "--quiet", "datacompy>=1.1,<2", "pandas<3.1", "pyarrow"]
        subprocess.run([str(python), *install], check=True)
    return python


def run(method: str, folder: Path, repeat: int) -> dict:
    python = datacompy_python() if method == "datacompy" else Path(sys.executable)
    command = [str(python), __file__, "--worker", method, "--folder", str(folder), "--repeat", str(repeat)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{method} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: dict[str, dict], injected: int, rows: int) -> None:
    print(f"\n{'method':<14}{'seconds':>9}{'peak MB':>10}{'+MB over loaded':>17}   only_blue  only_green  changed")
    for method, r in results.items():
        only_blue, only_green, changed = r["counts"]
        print(
            f"{method:<14}{r['seconds']:>9.2f}{r['peak_mb']:>10.0f}{r['peak_mb'] - r['baseline_mb']:>17.0f}"
            f"   {only_blue:>9}  {only_green:>10}  {changed:>7}"
        )
    print("(peak MB: the process's peak RSS, loading included; +MB: that peak less the RSS once the data is loaded)")
    lakeops, merge, datacompy = (results[m]["seconds"] for m in METHODS)
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    print(f"\ndatacompy / lakeops     {datacompy / lakeops:6.1f}x   (target >= 5: {met(datacompy / lakeops >= 5)})")
    print(f"lakeops / pandas merge  {lakeops / merge:6.2f}x   (target <= 1.5: {met(lakeops / merge <= 1.5)})")
    agree = len({tuple(r["counts"]) for r in results.values()}) == 1
    print(
        f"counts (only_blue, only_green, changed) agree across the three: {'yes' if agree else 'NO'}"
        f"; injected: {rows // 1000}, {rows // 1000}, {injected}"
    )
    fp, hashed = results["lakeops"]["fingerprint_s"], results["pandas merge"]["hash_pandas_object_s"]
    print(
        f"\nfingerprint of {rows:,} rows: {fp:.2f} s   pd.util.hash_pandas_object: {hashed:.2f} s"
        f"   ratio {fp / hashed:.2f}x;  fingerprint / keyed_diff {fp / lakeops:.2f}x"
    )


def blue_columns(folder: str) -> int:
    import pyarrow.parquet as pq

    return len(pq.read_schema(Path(folder) / "blue.parquet").names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.folder, args.repeat)))
        return
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="lakeops-bench-diff-") as folder:
        blue, green, injected = generate(args.rows)
        pq.write_table(blue, Path(folder) / "blue.parquet")
        pq.write_table(green, Path(folder) / "green.parquet")
        del blue, green
        print(
            f"{args.rows:,} rows a side, {blue_columns(folder)} columns, key {', '.join(KEY)}; "
            f"each method in its own process, best of {args.repeat} (seconds of the comparison only)"
        )
        results = {}
        for method in METHODS:
            results[method] = run(method, Path(folder), args.repeat)
            print(f"  {method:<13} runs: {', '.join(f'{s:.2f}' for s in results[method]['runs'])} s")
    report(results, injected, args.rows)


if __name__ == "__main__":
    main()
