"""The segmentation quality report as one self-contained HTML page: inline CSS and inline SVG
charts (rfmlake.charts), no script, nothing fetched. Rendered from the quality JSON
document (rfmlake.reporting.quality), every string escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from rfmlake import __version__
from rfmlake.charts import Frame, Series, bar_chart, hbar_chart, line_chart

SMALL = Frame(width=340, height=260, left=62, right=14, top=36, bottom=50)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}
.meta{color:#555;font-size:14px;margin:0 0 16px}.meta code{font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #e1e4e8;border-radius:6px;padding:10px 14px;min-width:150px}
.card .value{font-size:22px;font-weight:600}.card .name{font-size:12px;color:#666}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.charts svg{max-width:100%;height:auto;border:1px solid #eee;border-radius:4px;background:#fff}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid #e5e5e5;padding:4px 10px;text-align:right}
th{background:#f3f4f6}th:first-child,td:first-child{text-align:left}
td.text,th.text{text-align:left}
tr.chosen td{background:#fff3e6;font-weight:600}
.reason{background:#f3f8fc;border-left:4px solid #0072B2;padding:8px 12px;margin:8px 0}
.notes li{color:#7a4a00}.muted{color:#777}
caption{text-align:left;caption-side:top;padding:2px 0;font-size:12px}
code{white-space:nowrap}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return _e(value)


def _share(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, caption: str = "",
           chosen: int | None = None, text_columns: int = 1) -> str:
    """`rows` hold already-escaped cell HTML; headers are escaped here."""
    head = "".join(f'<th{" class=text" if i < text_columns else ""} scope="col">{_e(h)}</th>'
                   for i, h in enumerate(headers))
    body = []
    for index, row in enumerate(rows):
        cls = ' class="chosen"' if chosen is not None and index == chosen else ""
        cells = "".join(f'<td{" class=text" if i < text_columns else ""}>{cell}</td>' for i, cell in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<caption class=muted>{_e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _card(name: str, value: str) -> str:
    return f'<div class="card"><div class="value">{value}</div><div class="name">{_e(name)}</div></div>'


def _notes(notes: Iterable[Any]) -> str:
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<ul class="notes">{items}</ul>' if items else ""


# -- sections ---------------------------------------------------------------------------------------
def _k_section(seg: dict[str, Any]) -> str:
    curve = seg.get("selection_curve", [])
    if seg.get("k_selection") == "skipped":
        return (f'<section id="k-selection"><h2>k selection</h2>'
                f'<p class="reason">{_e(seg.get("k_reason"))}</p></section>')
    ks = [str(c["k"]) for c in curve]
    chosen = str(seg.get("k"))
    charts = []
    for key, name, y_label in (("inertia", "Inertia (elbow)", "within-cluster sum of squares"),
                               ("silhouette", "Silhouette", "silhouette (higher is better)"),
                               ("calinski_harabasz", "Calinski-Harabasz", "CH index (higher is better)")):
        charts.append(line_chart(
            ks, [Series(name, [c.get(key) for c in curve])], title=f"{name} by k", x_label="k",
            y_label=y_label, highlight=chosen, highlight_label=f"k={chosen} chosen",
            include_zero=(key == "inertia"), frame=SMALL,
            description=f"{name} of each candidate k (on the seeded sample, or all customers when fewer); "
                        f"chosen k={chosen} is marked.",
            name=f"k-{key.replace('_', '-')}",
        ))
    chosen_index = ks.index(chosen) if chosen in ks else None
    table = _table(
        ["k", "inertia", "silhouette", "Calinski-Harabasz", "smallest cluster", "customers in sample"],
        ([_e(c["k"]), _num(c.get("inertia"), 1), _num(c.get("silhouette")), _num(c.get("calinski_harabasz"), 1),
          _share(c.get("smallest_share")), _num(c.get("rows"))] for c in curve),
        chosen=chosen_index, caption="chosen k highlighted; smallest cluster = its share of the customers",
    )
    return (f'<section id="k-selection"><h2>k selection</h2>'
            f'<p class="reason"><strong>Chosen k = {_e(seg.get("k"))}</strong> &middot; {_e(seg.get("k_selection"))}. '
            f'{_e(seg.get("k_reason"))}</p>'
            f'<div class="charts">{"".join(charts)}</div>{table}</section>')


def _sizes_chart(sizes: list[dict[str, Any]], title: str, chart_id: str) -> str:
    names = [str(s["name"]) for s in sizes]
    return hbar_chart(
        names,
        [Series("share of customers", [s.get("customer_share") for s in sizes]),
         Series("share of revenue", [s.get("monetary_share") for s in sizes])],
        title=title, x_label="share of all customers / of total monetary", percent=True, width=760,
        label_width=max(120, min(300, 7 * max((len(n) for n in names), default=10) + 16)),
        description="Per group: share of customers and share of monetary (revenue) in the run.", name=chart_id,
    )


def _sizes_table(sizes: list[dict[str, Any]], first: str) -> str:
    return _table([first, "customers", "share of customers", "monetary", "share of revenue"],
                  ([_e(s["name"]), _num(s.get("customers")), _share(s.get("customer_share")),
                    _num(s.get("monetary"), 2), _share(s.get("monetary_share"))] for s in sizes))


def _clusters_section(seg: dict[str, Any]) -> str:
    centroids = seg.get("centroids", [])
    table = _table(
        ["cluster_id", "cluster_label", "recency_days", "frequency", "monetary"],
        ([_e(c["cluster_id"]), _e(c["cluster_label"]), _num(c.get("recency_days"), 1),
          _num(c.get("frequency"), 2), _num(c.get("monetary"), 2)] for c in centroids),
        caption="centroids in original units (the centre of each cluster: days since last order, orders, "
                "net revenue)", text_columns=2,
    ) if centroids else '<p class="muted">No centroids recorded for this run.</p>'
    sizes = seg.get("cluster_sizes", [])
    return (f'<section id="clusters"><h2>KMeans clusters</h2>{table}'
            f'<div class="charts">{_sizes_chart(sizes, "Cluster sizes and revenue share", "cluster-sizes")}</div>'
            f'{_sizes_table(sizes, "cluster_label")}</section>')


def _segments_section(seg: dict[str, Any]) -> str:
    sizes = seg.get("segment_sizes", [])
    return (f'<section id="segments"><h2>RFM segments</h2>'
            f'<p class="muted">Rule table version {_e(seg.get("rules_version"))}.</p>'
            f'<div class="charts">{_sizes_chart(sizes, "RFM segment sizes and revenue share", "segment-sizes")}'
            f'</div>{_sizes_table(sizes, "rfm_segment")}</section>')


def _scores_section(seg: dict[str, Any]) -> str:
    scores: dict[str, list[int]] = seg.get("score_distributions") or {}
    if not scores:
        return ('<section id="scores"><h2>Score distributions</h2>'
                '<p class="muted">Not recorded for this run.</p></section>')
    n_bins = max(len(v) for v in scores.values())
    labels = [str(s) for s in range(1, n_bins + 1)]
    names = {"r_score": "recency (R)", "f_score": "frequency (F)", "m_score": "monetary (M)"}
    columns = [c for c in ("r_score", "f_score", "m_score") if c in scores]
    chart = bar_chart(
        labels, [Series(names[c], [*scores[c], *[None] * (n_bins - len(scores[c]))]) for c in columns],
        title="R, F and M score distributions", x_label="score (higher is better)", y_label="customers",
        description="Customers per score value for recency, frequency and monetary. Ties share a score, "
                    "so bins are as balanced as ties allow.",
        name="scores",
    )
    table = _table(["score", *[names[c] for c in columns]],
                   ([_e(label), *[_num(scores[c][i]) if i < len(scores[c]) else "" for c in columns]]
                    for i, label in enumerate(labels)))
    return f'<section id="scores"><h2>Score distributions</h2><div class="charts">{chart}</div>{table}</section>'


def _params_table(title: str, params: dict[str, Any], names: Sequence[str]) -> str:
    fit = params.get("fit") or {}
    rows = [[_e(n), _num(params.get(n), 4)] for n in names]
    rows += [[_e("log likelihood"), _num(fit.get("log_likelihood"), 2)],
             [_e("customers fitted"), _num(fit.get("customers"))],
             [_e("converged starts"), f'{_num(fit.get("converged_starts"))} of {_num(fit.get("starts"))}'],
             [_e("parameters at the search bound"), _e(", ".join(map(str, fit.get("at_bound") or [])) or "none")]]
    if fit.get("failures"):  # why starts did not converge (a fit that failed)
        rows.append([_e("starts that failed"), _e("; ".join(map(str, fit["failures"])))])
    return f"<h3>{_e(title)}</h3>" + _table(["parameter", "value"], rows)


def _value_section(value: dict[str, Any] | None) -> str:
    if not value:
        return ('<section id="customer-value"><h2>Customer value model</h2>'
                '<p class="muted">This run has no customer value report.</p></section>')
    period = value.get("purchase_period") or "order"
    unit = "purchase days" if period == "day" else "orders"
    if value.get("status") == "skipped":
        parts = ['<section id="customer-value"><h2>Customer value model</h2>',
                 f'<p class="reason"><strong>Skipped</strong>: nothing was fitted or published '
                 f'(gold.customer_value is empty for this run). {_e(value.get("skipped"))}</p>']
        diagnostics = value.get("diagnostics") or {}
        if isinstance(diagnostics.get("bgnbd"), dict):
            parts.append(_params_table("BG/NBD where the fit stopped", diagnostics["bgnbd"], ("r", "alpha", "a", "b")))
        if isinstance(diagnostics.get("gamma_gamma"), dict):
            parts.append(_params_table("Gamma-Gamma where the fit stopped", diagnostics["gamma_gamma"],
                                       ("p", "q", "v")))
        parts.append(_notes(value.get("notes") or []))
        parts.append("</section>")
        return "".join(parts)
    discount = value.get("annual_discount_rate")
    money_terms = ("" if discount is None else
                   f'; discounted CLV at margin {_share(value.get("margin"))} and {_share(discount)} a year')
    parts = ['<section id="customer-value"><h2>Customer value model</h2>',
             f'<p class="meta">model <code>{_e(value.get("model_version"))}</code>, horizon '
             f'{_e(value.get("horizon_days"))} days, {_num(value.get("customers"))} customers '
             f'({_num(value.get("repeat_customers"))} with repeat purchases); a purchase is '
             f'{"a day with orders" if period == "day" else "an order"} (value.purchase_period: {_e(period)})'
             f'{money_terms}</p>']
    origin = value.get("model_from") or {}
    if origin:
        parts.append(f'<p class="muted">Fitted by run <code>{_e(origin.get("run_id"))}</code> (as_of '
                     f'{_e(origin.get("as_of_date"))}); this run predicted with that model on its own as_of: the same '
                     'settings, within value.refit_every_days of it. The fit and calibration below are that '
                     "run's.</p>")
    totals = value.get("totals") or {}
    parts.append('<div class="cards">' + "".join(_card(str(k), _num(v, 2)) for k, v in totals.items()) + "</div>")
    parts.append('<div class="charts"><div>')
    if isinstance(value.get("bgnbd"), dict):
        parts.append(_params_table("BG/NBD (purchases, dropout)", value["bgnbd"], ("r", "alpha", "a", "b")))
    if isinstance(value.get("gamma_gamma"), dict):
        parts.append(_params_table("Gamma-Gamma (spend per order)", value["gamma_gamma"], ("p", "q", "v")))
    parts.append("</div><div>")
    histogram = value.get("p_alive_histogram") or {}
    edges, counts = histogram.get("edges") or [], histogram.get("counts") or []
    if len(edges) == len(counts) + 1:
        labels = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(len(counts))]
        parts.append(bar_chart(
            labels, [Series("customers", counts)], title="p_alive distribution", x_label="probability alive",
            y_label="customers", description="Customers per p_alive band (BG/NBD probability still active).",
            name="p-alive",
        ))
    parts.append("</div></div>")
    calibration = value.get("calibration")
    parts.append(f"<h3>Calibration: predicted vs actual repeat purchases ({_e(unit)}) in a holdout period</h3>")
    if isinstance(calibration, dict) and calibration.get("buckets"):
        buckets = calibration["buckets"]
        parts.append(
            f'<p class="muted">BG/NBD refitted on orders before {_e(calibration.get("calibration_end_date"))}; '
            f'mean {_e(unit)} per customer in the next {_num(calibration.get("holdout_days"), 0)} days, by repeat '
            f'{_e(unit)} in the calibration period. Total predicted {_num(calibration.get("predicted_total"), 1)}, '
            f'actual {_num(calibration.get("actual_total"), 1)}.</p>')
        parts.append(line_chart(
            [str(b["bucket"]) for b in buckets],
            [Series("predicted", [b.get("predicted_mean") for b in buckets]),
             Series("actual", [b.get("actual_mean") for b in buckets])],
            title="Calibration: predicted vs actual", x_label=f"repeat {unit} in the calibration period",
            y_label=f"mean {unit} in the holdout", include_zero=True,
            description=f"Mean predicted and actual holdout {unit} per calibration-frequency bucket; close "
                        "lines mean a well calibrated model.",
            name="calibration",
        ))
        parts.append(_table([f"repeat {unit}", "customers", "predicted mean", "actual mean"],
                            ([_e(b["bucket"]), _num(b.get("customers")), _num(b.get("predicted_mean"), 3),
                              _num(b.get("actual_mean"), 3)] for b in buckets)))
    else:
        parts.append('<p class="muted">No calibration check for this run (see the notes).</p>')
    parts.append(_notes(value.get("notes") or []))
    parts.append("</section>")
    return "".join(parts)


def _identity_section(identity: dict[str, Any] | None) -> str:
    if not identity:
        return ""
    stage = identity.get("stage") or {}
    parts = ['<section id="identity"><h2>Identity resolution</h2>']
    if stage:
        members = stage.get("members") or {}
        parts.append('<div class="cards">' + "".join([
            _card("people", _num(stage.get("people"))),
            _card("customer ids", _num(members.get("customer_id"))),
            _card("people with several customer ids", _num(stage.get("people_with_several_customer_ids"))),
            _card("devices", _num(members.get("anonymous_id"))),
            _card("shared devices kept apart", _num(stage.get("shared_devices"))),
            _card("matches to review", _num(stage.get("pairs_for_review"))),
        ]) + "</div>")
        changes = stage.get("changes") or {}
        parts.append(f'<p class="muted">matching model <code>{_e(stage.get("model_version"))}</code> '
                     f'({"trained" if stage.get("model_trained") else "shipped parameters"}); '
                     f'{_num(stage.get("pairs_joined"))} probabilistic matches joined; this run: '
                     f'{_num(changes.get("merges"))} merges, {_num(changes.get("splits"))} splits, '
                     f'{_num(changes.get("new_people"))} new people.</p>')
    merges = identity.get("merges")
    if merges:
        rows = [
            [_e("CRM duplicates (pairs)"), _num(merges["planted_pairs"]), _num(merges["predicted_pairs"]),
             _num(merges["true_positives"]), _num(merges["precision"]), _num(merges["recall"])],
            [_e("devices browsing before sign-up"), _num(merges["pre_signup_devices"]), "",
             _num(merges["pre_signup_devices_joined"]), "", _num(merges["device_recall"])],
            [_e("shared devices kept apart"), _num(merges["shared_devices"]), "",
             _num(merges["shared_devices_kept_apart"]), "", ""],
        ]
        parts.append(_table(["against ground truth", "planted", "joined", "correct", "precision", "recall"], rows,
                            caption=f"truth: {identity.get('truth_file')} (targets: precision >= 0.99, "
                                    "recall >= 0.90)"))
        examples = [f"wrongly joined: {a} + {b}" for a, b in merges.get("wrong_merges", [])]
        examples += [f"missed: {a} + {b}" for a, b in merges.get("missed_pairs", [])]
        parts.append(_notes(examples))
    parts.append("</section>")
    return "".join(parts)


def _recommendations_section(recs: dict[str, Any] | None) -> str:
    head = '<section id="recommendations"><h2>Recommendations: model against the popularity baseline</h2>'
    if not recs:
        return head + '<p class="muted">This run has no recommendations report.</p></section>'
    if recs.get("status") == "skipped":
        return (head + f'<p class="reason"><strong>Skipped</strong>: gold.product_recommendations is empty for '
                f'this run. {_e(recs.get("skipped"))}</p>{_notes(recs.get("notes") or [])}</section>')
    parts = [head, f'<p class="meta">model <code>{_e(recs.get("model_version"))}</code>, '
             f'{_num(recs.get("customers"))} customers served, catalogue coverage {_share(recs.get("coverage"))}; '
             f'by source: {_e(", ".join(f"{k} {v}" for k, v in (recs.get("customers_by_source") or {}).items()))}</p>']
    fitted_by = recs.get("model_from") or {}
    if fitted_by:
        parts.append(f'<p class="muted">Fitted by run <code>{_e(fitted_by.get("run_id"))}</code> (as_of '
                     f'{_e(fitted_by.get("as_of_date"))}); this run scored {_num(recs.get("customers_scored"))} people '
                     f'with that model (their purchases, views or segment changed, or they are new) and '
                     f'{_num(recs.get("customers_carried"))} kept their lists: the same settings, within '
                     'recommendations.refit_every_days of it.</p>')
    evaluation = recs.get("evaluation") or {}
    metrics = evaluation.get("metrics") or {}
    if metrics:
        k = evaluation.get("k")
        parts.append(
            f'<p class="muted">Fitted on interactions before {_e(evaluation.get("split_date"))}, scored on the '
            f'{_num(evaluation.get("customers"))} customers with history who bought a product new to them from then '
            f'until {_e(evaluation.get("end_date"))} ({_num(evaluation.get("cold_test_buyers"))} buyers without '
            f'history left out). Difference = model - baseline, with its '
            f'{_share(evaluation.get("confidence_level"))} interval from {_num(evaluation.get("bootstrap_samples"))} '
            'bootstrap resamples of the customers.</p>')
        origin = recs.get("evaluation_from") or {}
        if origin:
            parts.append(f'<p class="muted">Evaluated by run <code>{_e(origin.get("run_id"))}</code> (as_of '
                         f'{_e(origin.get("as_of_date"))}) and carried by this run: the same parameters, within '
                         'recommendations.evaluate_every_days of it.</p>')
        names = [name for name in metrics if name != "coverage"]
        parts.append(bar_chart(
            names, [Series("model", [metrics[n]["model"] for n in names]),
                    Series("popularity baseline", [metrics[n]["baseline"] for n in names])],
            title=f"Ranking metrics at {_e(k)}", x_label="metric", y_label="mean over customers",
            description="Mean precision, recall and NDCG of the model and the popularity baseline on the time split.",
            name="recommendation-metrics"))
        rows = [[_e(n), _num(metrics[n]["model"], 4), _num(metrics[n]["baseline"], 4),
                 _num(metrics[n]["difference"], 4),
                 f'{_num(metrics[n]["ci_low"], 4)} .. {_num(metrics[n]["ci_high"], 4)}',
                 "yes" if metrics[n]["ci_low"] > 0 else "no"] for n in names]
        coverage = metrics.get("coverage") or {}
        rows.append(["catalogue coverage", _share(coverage.get("model")), _share(coverage.get("baseline")), "", "", ""])
        parts.append(_table(["metric", "model", "baseline", "difference", "95% interval", "better (interval > 0)"],
                            rows))
    else:
        parts.append('<p class="muted">No offline evaluation for this run (see the notes).</p>')
    parts.append(_notes([*(recs.get("notes") or []), *([evaluation["skipped"]] if evaluation.get("skipped") else [])]))
    parts.append("</section>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The whole page for a quality document built by build_quality_report."""
    run = report["run"]
    seg = report["segmentation"]
    value = report.get("customer_value")
    title = f"Segmentation quality report: run {run.get('run_id')}"
    value_version = value.get("model_version") if value else None
    segments = seg.get("segment_sizes", [])
    meta = (f'run <code>{_e(run.get("run_id"))}</code> ({_e(run.get("status"))}) &middot; '
            f'as of <strong>{_e(run.get("as_of_date"))}</strong> &middot; '
            f'segmentation model <code>{_e(seg.get("model_version"))}</code> '
            f'({"refitted" if seg.get("refitted") else "reused"}: {_e(seg.get("refit_reason"))})'
            + (f' &middot; value model <code>{_e(value_version)}</code>' if value_version else "")
            + f' &middot; started {_e(run.get("started_at") or "n/a")} &middot; rfmlake {_e(__version__)}')
    cards = "".join([
        _card("customers scored", _num(seg.get("customers_scored"))),
        _card("clusters (k)", _e(seg.get("k"))),
        _card("RFM segments with customers", _num(sum(1 for s in segments if s.get("customers")))),
    ])
    notes = [*seg.get("notes", []), *report.get("notes", [])]
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Segmentation quality report</h1><p class=\"meta\">{meta}</p>",
        f'<div class="cards">{cards}</div>',
        _k_section(seg), _clusters_section(seg), _segments_section(seg), _scores_section(seg),
        _value_section(value), _recommendations_section(report.get("recommendations")),
        _identity_section(report.get("identity")),
        f'<section id="notes"><h2>Notes</h2>{_notes(notes) or "<p class=muted>none</p>"}</section>',
        '<p class="muted">Generated from <code>segmentation_quality.json</code> in the run folder; '
        "charts round their numbers, the JSON keeps them exact.</p>",
        "</main></body></html>\n",
    ])
