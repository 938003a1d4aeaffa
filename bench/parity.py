"""TIMEX parity: `python bench/parity.py [CONFIG.json] [--timex-reference DIR] [--timex-json FILE]`.

One config with xcorr and historical predictions (default bench/configs/parity.json: three monthly series,
arima + exponentialsmoothing × 2 transformations, xcorr pearson+kendall, historical predictions over the
last 6 months) through the whole system, and TIMEX 1.2.3 on the same config and CSV (bench/run_timex.py in
the reference venv; or a JSON line it printed before, `--timex-json`). Prints, per series: the best model,
each model's best test MAE, the extra regressors chosen, each model's historical-prediction MAE; then the
historical steps one by one. A step is "the same model" on both sides when TIMEX's result at that step and
ours came from the same transformation and the same extra regressors (TIMEX's from its own
ModelResult.characteristics, bench/run_timex.py; ours from the answer's `steps`); those steps must be within
1 % of TIMEX's at every point, and the others are counted with the reason their choices differ. TIMEX 1.2.3's
arima and exponentialsmoothing ignore extra regressors (arima_predictor.py fits pmdarima's auto_arima on the
series alone, exponentialsmoothing_predictor.py Holt-Winters on it alone: their multivariate run equals the
univariate one and is never kept), so where ours kept a step with regressors the two answers are different
models; for those the univariate steps of ours (the in-process core without the multivariate stage in the
steps, the same planning and selection code) are compared with TIMEX's too. Times: wall, and CPU (ours: the
services and their pool workers; TIMEX: its process and children). Writes bench/results/parity.json
(parity_<config>.json for another config) and TIMEX's JSON line to bench/results/timex_<config>.jsonl, which
`--timex-json` reads back instead of running TIMEX again. On a busy machine TIMEX's historical run takes hours
(each step is a whole TIMEX run): `run_timex.py CONFIG --part final` and `--part K` for each step K, side by
side, and `--timex-json` with all their lines merges them. `bench/configs/parity_timex_arima.json` is the parity config
with `"arima_seasonal": false` (TIMEX's own arima search, forecasting/models/timex_arima.py): run it with the
parity config's TIMEX lines. `bench/configs/monthly_lstm.json` compares
the lstm model: TIMEX's needs the real torch in the reference venv (`pip install torch==1.13.1` there; README
"Models").

bench/configs/parity_leading.json (bench/data/leading.csv: `shipments` repeats `orders` one month later, plus
an unrelated `noise`; no historical predictions) is the multivariate exponential smoothing case: ours regresses
on the extra regressors (forecasting/models/exponential_smoothing.py), TIMEX 1.2.3's ES ignores them.
Measured (loaded machine): test MAE of ES univariate orders 3.73, shipments 5.33, both here and in TIMEX (whose
multivariate re-run finds "no improvements"); with the extra regressors here ES gives orders 1.05 (kept: the
answer, univariate best was arima 2.04) and shipments 1.02 (arima with regressors, 0.85, is kept).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from compute import load, timex_run, with_url
from scale_common import RESULTS, ROOT, Running, print_table, running, save, tree_cpu_seconds

from forecasting.config import parse_config
from forecasting.pipeline import forecast_all
from timex_stream.runtime.kafka import producer
from timex_stream.runtime.submit import submit
from timex_stream.tools.follow import follow
from timex_stream.tools.render import result_document

DEFAULT_CONFIG = ROOT / "bench" / "configs" / "parity.json"
WITHIN = 0.01  # a step is within 1 % when every one of its points is
# TIMEX 1.2.3's models that take no extra regressors although its multivariate stage passes them.
TIMEX_IGNORES_REGRESSORS = {"arima": "arima_predictor.py: pmdarima's auto_arima on the series alone, seasonal=False",
                            "exponentialsmoothing": "exponentialsmoothing_predictor.py: Holt-Winters on the "
                                                    "series alone"}


def ours(env: Running, config_path: Path) -> dict[str, Any]:
    config, csv_path = load(config_path)
    env.files[csv_path.name] = csv_path.read_bytes()
    served = with_url(config, f"{env.base_url}/{csv_path.name}")
    cpu0 = sum(env.cpu_seconds().values())
    t0 = time.perf_counter()
    rid = submit(producer(env.kafka.bootstrap_servers), served, origin="bench")
    view = follow(env.kafka.bootstrap_servers, [rid], timeout=3600)[rid]
    wall = time.perf_counter() - t0
    workers = sum(tree_cpu_seconds(pid, children_only=True) for pid in env.predictor_pids())
    return {"wall_s": round(wall, 2), "cpu_s": round(sum(env.cpu_seconds().values()) - cpu0, 1),
            "document": result_document(view), "fit_cpu_s": round(workers, 1)}


def univariate_steps(config_path: Path, workers: int) -> dict[str, dict[str, Any]]:
    """Per series, the historical predictions of ours without the multivariate stage in the steps (the core)."""
    config, csv_path = load(config_path)
    choices = forecast_all(parse_config(with_url(config, f"upload:{csv_path.name}")).config,
                           csv_path.read_bytes(), max_workers=workers, historical_multivariate=False)
    return {name: c.historical or {} for name, c in choices.items()}


def _best_mae(entry: dict[str, Any]) -> dict[str, float]:
    best: dict[str, float] = {}
    for row in entry.get("comparison") or ():
        mae = (row.get("metrics") or {}).get("MAE")
        if row.get("error") is None and mae is not None:
            best[row["model"]] = min(mae, best.get(row["model"], float("inf")))
    return {m: round(v, 4) for m, v in best.items()}


def _stamp(t: str) -> pd.Timestamp:
    return pd.Timestamp(t)


def our_steps(hist: dict[str, Any], model: str) -> dict[pd.Timestamp, dict[str, Any]]:
    """Our steps of `model` by their first forecast date: transformation, regressors, {date: forecast}."""
    entry = (hist.get("models") or {}).get(model) or {}
    stamps = [_stamp(t) for t in entry.get("timestamps") or ()]
    values = dict(zip(stamps, entry.get("forecast") or (), strict=False))
    first = hist.get("initial_index", 0) + 1  # the position of stamps[0]
    delta = hist.get("delta", 1)
    out = {}
    for step in entry.get("steps") or ():
        i = step["points_known"] - first
        dates = stamps[i:i + delta]
        if dates:
            out[dates[0]] = {"transformation": step["transformation"], "regressors": sorted(step["regressors"]),
                             "points": {d: values.get(d) for d in dates}}
    return out


def timex_steps(ref: dict[str, Any], model: str) -> dict[pd.Timestamp, dict[str, Any]]:
    """TIMEX's steps of `model` by their first forecast date, the same shape as `our_steps`."""
    past = (ref.get("historical") or {}).get(model) or {}
    values = {_stamp(t): v for t, v in zip(past.get("timestamps") or (), past.get("forecast") or (), strict=False)}
    ends = [(_stamp(s["end"]), s) for s in (ref.get("historical_steps") or {}).get(model) or ()]
    out = {}
    for k, (end, step) in enumerate(ends):
        until = ends[k + 1][0] if k + 1 < len(ends) else max(values, default=end)
        dates = sorted(d for d in values if end < d <= until)
        if dates:
            out[dates[0]] = {"transformation": step["transformation"], "regressors": sorted(step["regressors"]),
                             "points": {d: values[d] for d in dates}}
    return out


def _gap(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """The largest relative difference of a step's points (ours `a` against TIMEX's `b`); None: nothing to
    compare."""
    pairs = [(a["points"].get(d), v) for d, v in b["points"].items()]
    pairs = [(o, v) for o, v in pairs if o is not None and v is not None]
    return max((abs(o - v) / max(abs(v), 1e-12) for o, v in pairs), default=None)


def arima_season(config_path: Path, name: str, first: pd.Timestamp) -> int:
    """The season our arima fits at the step whose forecast starts at `first` (1: non-seasonal, as TIMEX's
    auto_arima always is: seasonal=False)."""
    from forecasting.models.statsforecast_models import _arima_season
    from forecasting.seasonality import season_length

    config, csv_path = load(config_path)
    if config["model_parameters"].get("arima_seasonal") is False:
        return 1  # TIMEX's own non-seasonal search (forecasting/models/timex_arima.py)
    inputs = config["input_parameters"]
    frame = pd.read_csv(csv_path, index_col=inputs["index_column_name"], parse_dates=True)
    known = frame.loc[frame.index < first, name].to_numpy(dtype=float)
    return _arima_season(known, season_length(inputs.get("frequency")))


def why_different(model: str, mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    if mine["transformation"] != theirs["transformation"]:
        return f"transformation: ours {mine['transformation']}, TIMEX {theirs['transformation']}"
    if mine["regressors"] and not theirs["regressors"] and model in TIMEX_IGNORES_REGRESSORS:
        return f"ours kept regressors, TIMEX's {model} ignores them"
    return f"regressors: ours {','.join(mine['regressors']) or '-'}, TIMEX {','.join(theirs['regressors']) or '-'}"


def compare_steps(doc: dict[str, Any], timex: dict[str, Any], univariate: dict[str, dict[str, Any]],
                  config_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per series and model, per model): the historical steps side by side."""
    rows, totals = [], {}
    for name, entry in sorted(doc["results"].items()):
        ref = timex.get("series", {}).get(name, {})
        hist = entry.get("historical_predictions") or {}
        for model in sorted(hist.get("models") or {}):
            mine, theirs = our_steps(hist, model), timex_steps(ref, model)
            alone = our_steps(univariate.get(name) or {}, model)
            t = totals.setdefault(model, Counter())
            same, within, worst, reasons = 0, 0, 0.0, Counter()
            uni_same, uni_within = 0, 0
            for first, theirs_step in sorted(theirs.items()):
                t["steps"] += 1
                m = mine.get(first)
                if m is None:
                    reasons["no step of ours"] += 1
                    continue
                if (m["transformation"], m["regressors"]) == (theirs_step["transformation"],
                                                              theirs_step["regressors"]):
                    same += 1
                    gap = _gap(m, theirs_step)
                    worst = max(worst, gap or 0.0)
                    within += gap is not None and gap <= WITHIN
                    if gap is None or gap > WITHIN:
                        season = arima_season(config_path, name, first) if model == "arima" else 1
                        seasonal = f" (ours seasonal ARIMA, season {season}; TIMEX's auto_arima is never " \
                                   "seasonal)" if season > 1 else ""
                        reasons[f"same choice, {100 * (gap or 0):.2f} % apart{seasonal}"] += 1
                else:
                    reasons[why_different(model, m, theirs_step)] += 1
                u = alone.get(first)
                univariate_same = u is not None and u["transformation"] == theirs_step["transformation"]
                if univariate_same and not theirs_step["regressors"]:
                    uni_same += 1
                    gap = _gap(u, theirs_step)
                    uni_within += gap is not None and gap <= WITHIN
            t.update({"same": same, "within": within, "uni_same": uni_same, "uni_within": uni_within})
            t.update(reasons)
            rows.append({"series": name, "model": model, "steps": len(theirs),
                         "same model (transf., regressors)": same, "within 1 %": within,
                         "max Δ % (same)": round(100 * worst, 3) if same else None,
                         "univariate steps: same transf. / within 1 %": f"{uni_same}/{uni_within}" if alone else "-",
                         "not the same model, why": "; ".join(f"{n}× {r}" for r, n in reasons.items()) or "-"})
    summary = []
    for model, t in sorted(totals.items()):
        reasons = {k: v for k, v in t.items() if k not in ("steps", "same", "within", "uni_same", "uni_within")}
        summary.append({"model": model, "steps": t["steps"], "same model": t["same"], "within 1 %": t["within"],
                        "univariate steps (ours without the stage): same transf. / within 1 %":
                            f"{t['uni_same']}/{t['uni_within']}",
                        "the others": "; ".join(f"{n}× {r}" for r, n in sorted(reasons.items())) or "-",
                        "why": TIMEX_IGNORES_REGRESSORS.get(model, "") and f"TIMEX's {model} ignores extra "
                               f"regressors ({TIMEX_IGNORES_REGRESSORS[model]})"})
    return rows, summary


def compare(doc: dict[str, Any], timex: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows = []
    for name, entry in sorted(doc["results"].items()):
        hist = (entry.get("historical_predictions") or {}).get("models") or {}
        ref = (timex or {}).get("series", {}).get(name, {})
        for model in sorted(set(_best_mae(entry)) | set(ref.get("mae", {}))):
            h, rh = hist.get(model) or {}, (ref.get("historical") or {}).get(model) or {}
            rows.append({
                "series": name, "model": model,
                "best (ours/TIMEX)": f"{entry.get('model')}/{ref.get('best', '-')}",
                "kept": entry.get("kept") or "-",
                "regressors (ours/TIMEX)": f"{','.join((entry.get('xcorr') or {}).get('regressors') or []) or '-'}/"
                                           f"{','.join(ref.get('xcorr_regressors') or []) or '-'}",
                "test MAE ours": _best_mae(entry).get(model), "test MAE TIMEX": ref.get("mae", {}).get(model),
                "past MAE ours": ((h.get("metrics") or {}).get("mae")), "past MAE TIMEX": rh.get("mae"),
                "past points ours/TIMEX": f"{sum(v is not None for v in h.get('forecast') or ())}/"
                                          f"{len(rh.get('forecast') or ())}",
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--workers", type=int, default=2, help="predictor pool workers")
    parser.add_argument("--timex-reference", type=Path, help="directory built by the shared timex-reference.sh")
    parser.add_argument("--timex-json", type=Path, nargs="+",
                        help="a JSON line bench/run_timex.py printed for this config (bench/results/timex_<config>"
                             ".jsonl after a run), or the lines of its parts (run_timex.py --part), merged")
    parser.add_argument("--ours-json", type=Path, help="this system's side from an earlier run's results file "
                                                       "(bench/results/parity*.json) instead of running it again")
    args = parser.parse_args()
    timex = reference(args)  # first: TIMEX and the stack would share the cores
    if args.ours_json:
        saved = json.loads(args.ours_json.read_text())
        mine, univariate = saved["ours"], saved.get("univariate") or {}
    else:
        # Everything inside: a Kafka client left for the garbage collector after the broker stops can hang exit.
        with running(args.workers) as env:
            mine = ours(env, args.config)
        config, _ = load(args.config)
        both = "historical_prediction_parameters" in config and "xcorr_parameters" in config
        univariate = univariate_steps(args.config, args.workers) if both else {}
    report(mine, timex, args, univariate)


def reference(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.timex_json:
        lines = [json.loads(f.read_text().strip().splitlines()[-1]) for f in args.timex_json]
        timex = lines[0] if len(lines) == 1 else merge_parts(lines, args.config)
        timex.setdefault("wall_s", round(timex["ingest_s"] + timex["predict_s"], 2))
        return timex
    if not args.timex_reference:
        return None
    config, csv_path = load(args.config)
    with tempfile.TemporaryDirectory() as tmp:  # TIMEX reads a path or URL; its save_path is a file
        config = with_url(config, str(csv_path))
        if "historical_prediction_parameters" in config:
            config["historical_prediction_parameters"]["save_path"] = str(Path(tmp) / "historical.pkl")
        timex = timex_run(args.timex_reference, config)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"timex_{args.config.stem}.jsonl").write_text(json.dumps(timex) + "\n")
    return timex


def merge_parts(parts: list[dict[str, Any]], config_path: Path) -> dict[str, Any]:
    """One TIMEX line from its parts (bench/run_timex.py --part: `final` and each historical step, run side by
    side): the final part's answers, every step's forecasts and choices, the historical errors computed here as
    TIMEX's (MAE, RMSE over the forecast points). Wall: the parts' sum (what one TIMEX process would have taken,
    near enough: each part ingests the CSV again) and the longest part; CPU: the sum."""
    final = next(p for p in parts if p.get("part") == "final")
    steps = sorted((p for p in parts if isinstance(p.get("part"), int)), key=lambda p: p["part"])
    config, csv_path = load(config_path)
    frame = pd.read_csv(csv_path, index_col=config["input_parameters"]["index_column_name"], parse_dates=True)
    out = {**final, "series": {}, "parts": len(parts),
           "wall_s": round(sum(p["ingest_s"] + p["predict_s"] for p in parts), 2),
           "longest_part_s": round(max(p["ingest_s"] + p["predict_s"] for p in parts), 2),
           "cpu_self_s": round(sum(p["cpu_self_s"] for p in parts), 1),
           "cpu_children_s": round(sum(p["cpu_children_s"] for p in parts), 1)}
    for name, entry in final["series"].items():
        historical, choices = {}, {}
        for part in steps:
            mine = part["series"].get(name, {})
            for model, h in (mine.get("historical") or {}).items():
                historical.setdefault(model, {}).update(zip(h["timestamps"], h["forecast"], strict=True))
            for model, chosen in (mine.get("historical_steps") or {}).items():
                choices.setdefault(model, []).extend(chosen)
        merged = {}
        for model, values in historical.items():
            stamps = sorted(values, key=pd.Timestamp)
            errors = [values[t] - float(frame.loc[pd.Timestamp(t), name]) for t in stamps]
            merged[model] = {"timestamps": stamps, "forecast": [values[t] for t in stamps],
                             "mae": round(sum(abs(e) for e in errors) / len(errors), 4),
                             "rmse": round((sum(e * e for e in errors) / len(errors)) ** 0.5, 4)}
        out["series"][name] = {**entry, "historical": merged, "historical_steps": choices}
    return out


def report(mine: dict[str, Any], timex: dict[str, Any] | None, args: argparse.Namespace,
           univariate: dict[str, dict[str, Any]]) -> None:
    rows = compare(mine["document"], timex)
    print_table(f"parity on {args.config.name}: each model's best test MAE and historical-prediction MAE", rows)
    steps, per_model = compare_steps(mine["document"], timex, univariate, args.config) if timex else ([], [])
    if steps:
        print_table("historical steps, per series and model", steps)
        print_table("historical steps, per model", per_model)
    timex_cpu = round(timex["cpu_self_s"] + timex["cpu_children_s"], 1) if timex else None
    parted = f" ({timex['parts']} parts side by side, the longest {timex['longest_part_s']})" \
        if timex and timex.get("parts") else ""
    times = [{"": "wall (s)", "ours": mine["wall_s"], "TIMEX 1.2.3": f"{timex['wall_s']}{parted}" if timex else None},
             {"": "CPU (s)", "ours": f"{mine['cpu_s']} (pool workers {mine['fit_cpu_s']})",
              "TIMEX 1.2.3": timex_cpu}]
    print_table("times (ours: submit → answer, the first request on a fresh stack, CPU of the services, their "
                "workers and the broker; TIMEX: ingest + predict, CPU of its process and children)", times)
    name = "parity" if args.config == DEFAULT_CONFIG else f"parity_{args.config.stem}"
    save(name, {"ours": mine, "univariate": univariate, "timex": timex, "rows": rows, "steps": steps,
                "per_model": per_model})


if __name__ == "__main__":
    main()
