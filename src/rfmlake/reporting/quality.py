"""The segmentation quality report of one run, as a JSON document (for machines; the HTML report
is rendered from it, so both say the same).

Built from what the run wrote to its folder `<lake>/_system/runs/<run_id>/`: the segmentation
report (k selection curve, sizes, centroids, score distributions), the customer value report (fit
and calibration; optional) and the run summary (status, the identity stage's counts); with ground
truth (`--truth`, or the generator's file in the run's landing folder), identity merge precision and
recall measured on the lake's gold.identity_graph. Written as `segmentation_quality.json`
next to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake

QUALITY_FORMAT = 1
QUALITY_FILE = "segmentation_quality.json"
SEGMENTATION_REPORT = "segmentation_report.json"
VALUE_REPORT = "customer_value_report.json"
RECOMMENDATIONS_REPORT = "recommendations_report.json"
RUN_SUMMARY = "summary.json"
SCORE_COLUMNS: tuple[str, ...] = ("r_score", "f_score", "m_score")


class ReportError(RfmlakeError):
    """The report cannot be made: no lake, no run, or a run without a segmentation report."""


# -- finding the run --------------------------------------------------------------------------------
def run_succeeded(run_dir: Path) -> bool:
    """True when the run's summary.json says the run succeeded (summary_succeeded)."""
    return summary_succeeded(_read_json(run_dir / RUN_SUMMARY, required=False))


def summary_succeeded(summary: Any) -> bool:
    """True when a run summary says every stage succeeded or was skipped (a model below its
    minimum; the runner writes an `error` key instead of the lake summary when a stage fails)."""
    if not isinstance(summary, dict) or summary.get("error"):
        return False
    stages = summary.get("stages")
    return isinstance(stages, list) and bool(stages) and all(
        isinstance(s, dict) and s.get("status") in {"succeeded", "skipped"} for s in stages)


def find_run(lake_root: Path, run_id: str | None = None) -> Path:
    """The folder of run `run_id`, or of the latest successful run (run ids start with their UTC
    start time, so the greatest id is the latest)."""
    if not lake_root.is_dir():
        raise ReportError(f"no lake at {lake_root}: the folder does not exist")
    runs_dir = Lake(lake_root).runs_dir
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir()) if runs_dir.is_dir() else []
    if run_id is not None:
        if not run_id or "/" in run_id or run_id in {".", ".."}:
            raise ReportError(f"{run_id!r} is not a run id")
        run_dir = runs_dir / run_id
        if not run_dir.is_dir():
            known = ", ".join(p.name for p in runs[-5:]) or "none"
            raise ReportError(f"no run {run_id} in the lake at {lake_root} (latest runs: {known})")
        return run_dir
    if not runs:
        raise ReportError(f"the lake at {lake_root} has no runs yet (folder {runs_dir}); run `rfmlake run` first")
    succeeded = [p for p in runs if run_succeeded(p)]
    if not succeeded:
        raise ReportError(f"none of the {len(runs)} run(s) in {runs_dir} succeeded; fix the run and rerun it, "
                          "or pass --run RUN_ID to report on a run that got past segmentation")
    return succeeded[-1]


# -- building the document --------------------------------------------------------------------------
def k_choice_reason(segmentation: dict[str, Any]) -> str:
    """Why this k, in words, from the k selection recorded with the model (the rule is
    rfmlake.segmentation.clustering.rank_candidates)."""
    k = segmentation.get("k")
    how = str(segmentation.get("k_selection", ""))
    curve = [c for c in segmentation.get("selection_curve", []) if isinstance(c, dict)]
    notes = [str(n) for n in segmentation.get("notes", [])]
    rule = segmentation.get("k_rule") or {}
    reused = "" if segmentation.get("refitted", True) else (
        f" The model was reused, not refitted ({segmentation.get('refit_reason', '')}); k is from its fit.")
    if how == "fixed":
        return f"k={k} was fixed in the settings (segmentation.k), so no k was searched.{reused}"
    if how == "skipped":
        detail = next((n for n in notes if "clustering skipped" in n), "clustering skipped: too little data")
        return f"No clusters: {detail}.{reused}"
    if not how.startswith("automatic") or not curve:
        detail = f" ({'; '.join(notes)})" if notes else ""
        if how.startswith("automatic"):
            return f"k={k} was chosen automatically.{reused}"
        return f"k={k} was limited by the data{detail}.{reused}"
    ks = [int(c["k"]) for c in curve]
    by_k = {int(c["k"]): c for c in curve}
    rows = int(curve[0].get("rows", 0))
    scored_on = (f"all {rows:,} customers" if rows == segmentation.get("customers_scored")
                 else f"a seeded sample of {rows:,} customers")
    text = f"k={k} was chosen automatically among k={min(ks)}..{max(ks)}, each fitted and scored on {scored_on}: "
    share = rule.get("min_cluster_share")
    share_rule = (f"every cluster holds at least {float(share):.0%} of customers and "
                  f"{int(rule.get('min_cluster_size', 1))} customers" if share is not None else "")
    elbow = rule.get("elbow")
    chosen = by_k.get(int(k)) if k is not None else None
    smallest = chosen.get("smallest_share") if chosen else None
    smallest_text = f" (its smallest cluster: {float(smallest):.1%})" if smallest is not None else ""
    silhouette = chosen.get("silhouette") if chosen else None
    if how == "automatic (elbow)":
        text += (f"it is the elbow of the inertia curve (Kneedle) and {share_rule}{smallest_text}; "
                 f"silhouette {_fmt(silhouette)}")
    elif how == "automatic (silhouette)" and share is not None:
        if elbow is None:
            why = "the inertia curve has no clear elbow"
        elif int(elbow) == k:
            why = f"the elbow k={elbow} fitted on every customer broke the share rule"
        else:
            elbow_share = by_k.get(int(elbow), {}).get("smallest_share")
            why = (f"the inertia elbow k={elbow} leaves a cluster of only {float(elbow_share):.1%} of customers"
                   if elbow_share is not None else f"the inertia elbow k={elbow} is not eligible")
        text += (f"{why}, so k is the one with the highest silhouette ({_fmt(silhouette)}) among the k where "
                 f"{share_rule}{smallest_text}")
    elif how == "automatic (silhouette)":  # a model fitted before the elbow and share rule
        text += f"it has the highest silhouette ({_fmt(silhouette)})"
    else:
        text += (f"no k gives {share_rule or 'clusters of the minimum share'}, so k is the one whose smallest "
                 f"cluster is largest{smallest_text}")
    calinski = [c for c in curve if c.get("calinski_harabasz") is not None]
    if calinski:
        top = max(calinski, key=lambda c: (float(c["calinski_harabasz"]), -int(c["k"])))
        agree = "agrees" if int(top["k"]) == k else f"would prefer k={int(top['k'])}"
        text += f". Calinski-Harabasz {agree}"
    return text + "." + reused


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


def _identity_section(lake: Lake, summary: Any, truth_path: Path | None, notes: list[str]) -> dict[str, Any] | None:
    """What the identity stage of the run did (its summary), and, against planted ground truth, merge
    precision and recall (rfmlake.identity.evaluation): the truth file given, else the generator's
    `_identity_truth.json` in the run's landing folder when there is one."""
    from rfmlake.identity.evaluation import TRUTH_FILE, load_truth, measure_merges

    stages = summary.get("stages", []) if isinstance(summary, dict) else []
    stage = next((s for s in stages if isinstance(s, dict) and s.get("name") == "identity"), None)
    if truth_path is None and isinstance(summary, dict) and summary.get("landing"):
        candidate = Path(str(summary["landing"])) / TRUTH_FILE
        truth_path = candidate if candidate.is_file() else None
        if truth_path is not None and lake.current("gold", "identity_graph") is None:
            # Found beside the landing, but nothing resolved identities in this lake (a run of selected
            # stages): nothing to measure. Given with --truth, the missing graph is an error.
            notes.append(f"identity merges not measured: {candidate} is there, the lake has no gold.identity_graph")
            truth_path = None
    if stage is None and truth_path is None:
        return None
    section: dict[str, Any] = {"stage": stage.get("summary") if stage else None, "truth_file": None, "merges": None}
    if truth_path is not None:
        quality = measure_merges(lake, load_truth(truth_path))
        section["truth_file"] = str(truth_path)
        section["merges"] = quality.to_dict()
        if quality.precision < 0.99 or quality.recall < 0.90:
            notes.append(f"identity merges below target: precision {quality.precision:.3f} (>= 0.99), "
                         f"recall {quality.recall:.3f} (>= 0.90)")
    return section


def build_quality_report(lake_root: Path, run_dir: Path, truth: Path | None = None) -> dict[str, Any]:
    """The quality document of the run in `run_dir` (see the module docstring); with `truth`, the
    identity merges are measured against that ground-truth file."""
    segmentation = _read_json(run_dir / SEGMENTATION_REPORT, required=True)
    if not isinstance(segmentation, dict) or "model_version" not in segmentation:
        raise ReportError(f"{run_dir / SEGMENTATION_REPORT} is not a segmentation report")
    summary = _read_json(run_dir / RUN_SUMMARY, required=False)
    value = _read_json(run_dir / VALUE_REPORT, required=False)
    recommendations = _read_json(run_dir / RECOMMENDATIONS_REPORT, required=False)
    lake = Lake(lake_root)
    notes: list[str] = []

    centroids = segmentation.get("centroids") or _stored_centroids(lake, str(segmentation["model_version"]), notes)
    scores = segmentation.get("score_distributions") or _scores_from_gold(lake, segmentation, notes)
    curve = [
        {"k": int(c["k"]), "inertia": c.get("inertia"), "silhouette": c.get("silhouette"),
         "calinski_harabasz": c.get("calinski_harabasz"), "smallest_share": c.get("smallest_share"),
         "rows": c.get("rows")}
        for c in segmentation.get("selection_curve", [])
    ]
    if curve and all(c["calinski_harabasz"] is None for c in curve):
        notes.append("Calinski-Harabasz is not recorded for this run's k selection (the model was fitted "
                      "before it was added, or no k had two clusters)")
    status = ("succeeded" if run_succeeded(run_dir)
              else "failed" if isinstance(summary, dict) and summary.get("error") else "unknown")
    return {
        "format": QUALITY_FORMAT,
        "run": {
            "run_id": run_dir.name,
            "status": status,
            "started_at": summary.get("started_at") if isinstance(summary, dict) else None,
            "as_of_date": segmentation.get("as_of_date"),
            "lake": str(lake_root),
        },
        "segmentation": {
            "model_version": segmentation["model_version"],
            "refitted": segmentation.get("refitted"),
            "refit_reason": segmentation.get("refit_reason"),
            "rules_version": segmentation.get("rules_version"),
            "customers_scored": segmentation.get("customers_scored"),
            "k": segmentation.get("k"),
            "k_selection": segmentation.get("k_selection"),
            "k_reason": k_choice_reason(segmentation),
            "k_rule": segmentation.get("k_rule") or {},
            "selection_curve": curve,
            "centroids": centroids,
            "segment_sizes": segmentation.get("segment_sizes", []),
            "cluster_sizes": segmentation.get("cluster_sizes", []),
            "score_distributions": scores,
            "notes": list(segmentation.get("notes", [])),
        },
        "customer_value": _value_section(value),
        "identity": _identity_section(lake, summary, truth, notes),
        "recommendations": _recommendations_section(recommendations),
        "notes": notes,
    }


def write_quality_json(run_dir: Path, report: dict[str, Any]) -> Path:
    path = run_dir / QUALITY_FILE
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    return path


# -- helpers ----------------------------------------------------------------------------------------
def _read_json(path: Path, *, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise ReportError(f"run {path.parent.name} has no {path.name} (at {path}): the run stopped before "
                              "the segmentation stage, or its folder was changed")
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not valid JSON: {exc}") from None


def _value_section(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    keys = ("status", "skipped", "diagnostics", "model_version", "segmentation_model_version", "as_of_date",
            "horizon_days", "purchase_period", "margin", "annual_discount_rate", "customers", "repeat_customers",
            "bgnbd", "gamma_gamma", "population_mean_order_value", "totals", "p_alive_histogram", "calibration",
            "model_from", "notes")
    return {k: value.get(k) for k in keys}


def _recommendations_section(report: Any) -> dict[str, Any] | None:
    if not isinstance(report, dict):
        return None
    keys = ("status", "skipped", "model_version", "model_from", "as_of_date", "parameters", "interactions",
            "products", "customers", "customers_scored", "customers_carried", "rows", "coverage",
            "customers_by_source", "evaluation", "evaluation_from", "notes")
    return {k: report.get(k) for k in keys}


def _stored_centroids(lake: Lake, model_version: str, notes: list[str]) -> list[dict[str, Any]]:
    """Centroids from the stored segmentation model, for runs whose report predates them."""
    path = lake.models_dir / "segmentation" / model_version / "model.json"
    try:
        clusterer = json.loads(path.read_text())["clusterer"]
        ids = clusterer.get("cluster_ids", list(range(int(clusterer["k"]))))
        rows = [
            {"cluster_id": int(cid), "cluster_label": str(label), "recency_days": round(float(r), 2),
             "frequency": round(float(f), 3), "monetary": round(float(m), 2)}
            for cid, label, (r, f, m) in zip(ids, clusterer["labels"], clusterer["centroids_original"], strict=True)
        ]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        notes.append(f"cluster centroids unavailable: the run's report has none and the model file {path} "
                     f"cannot be read ({type(exc).__name__})")
        return []
    notes.append(f"cluster centroids read from the stored model {model_version}")
    return rows


def _scores_from_gold(lake: Lake, segmentation: dict[str, Any], notes: list[str]) -> dict[str, list[int]]:
    """Score counts from gold.customer_rfm when it still holds this run's rows (same model version
    and as_of), for runs whose report predates score distributions."""
    ref = lake.current("gold", "customer_rfm")
    if ref is not None:
        table = pq.read_table(ref.path, columns=[*SCORE_COLUMNS, "model_version", "as_of_date"]).to_pandas()
        same = (set(table["model_version"].astype(str)) == {str(segmentation["model_version"])}
                and {str(d) for d in table["as_of_date"]} == {str(segmentation.get("as_of_date"))})
        if same and len(table):
            top = (_stored_n_bins(lake, str(segmentation["model_version"]))
                   or int(table[list(SCORE_COLUMNS)].max().max()))
            notes.append("score distributions read from gold.customer_rfm (this run's report predates them)")
            return {c: [int((table[c] == s).sum()) for s in range(1, top + 1)] for c in SCORE_COLUMNS}
    notes.append("score distributions unavailable: the run's report has none and gold.customer_rfm now holds "
                 "another run's scores")
    return {}


def _stored_n_bins(lake: Lake, model_version: str) -> int | None:
    path = lake.models_dir / "segmentation" / model_version / "model.json"
    try:
        return int(json.loads(path.read_text())["settings"]["n_bins"])
    except (OSError, KeyError, TypeError, ValueError):
        return None
