#!/usr/bin/env python3
"""Charts of the side-by-side benchmarks (benches/peers/*.sh) as PNG files.

Reads the tab-separated results the scripts append with RESULTS_TSV=FILE
(one header line naming the columns, then one row per tool) and draws, with
matplotlib's Agg backend (no display needed), into the --out directory:

  records_per_cpu_second.png  records per CPU-second per tool, one panel per
                              scenario (cold read, CSV table, appends)
  p99_latency_vs_rate.png     p99 latency against the offered append rate,
                              one line per tool; rates a tool did not keep
                              up with are drawn as crosses
  kill9_loss_duplication.png  records missing and duplicated after kill -9,
                              per tool (zeros are labelled, not left blank)
  peak_rss.png                peak RSS per tool, one panel per scenario

Columns by file (extra columns are ignored, the order does not matter):
  --cold, --tables  tool records wall_s records_per_s cpu_s
                    records_per_cpu_s rss_mb
  --appends         tool rate p50_ms p99_ms max_ms cpu_per_line_us rss_mb
                    kept_up
  --reliability     tool written kills rotations missing duplicated
  --metrics         tool cpu_s cpu_ms_per_sample rss_mb

Every file is optional; a missing or unreadable file, a row with a missing
or non-numeric value, a tool present in one file only: each is skipped or
drawn with what there is, with a note on stderr. A chart with nothing to
draw is not written. A tool with several rows in one file (results of
several runs appended) is drawn with the median of its rows; appends keep
one point per tool and rate.

  benches/peers/plot.py --out docs/benchmarks --cold cold.tsv \\
      --tables tables.tsv --appends appends.tsv --reliability rel.tsv \\
      --metrics metrics.tsv
"""
import argparse
import csv
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

THOUSANDS = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:g}")

BASELINE = "tributary"
# One colour per tool across every chart; tributary always the same.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
SCENARIOS = {"cold": "cold read of a log file", "tables": "CSV table -> JSON",
             "appends": "appends", "metrics": "host metrics"}


def note(msg):
    print(f"plot.py: {msg}", file=sys.stderr)


def read_tsv(path, label):
    """Rows of a TSV as dicts keyed by its header; [] if absent or bad."""
    if not path:
        return []
    if not os.path.isfile(path):
        note(f"{label}: no file {path}, skipped")
        return []
    try:
        with open(path, newline="") as f:
            lines = [l for l in f if l.strip() and not l.startswith("#")]
    except OSError as e:
        note(f"{label}: {path}: {e}, skipped")
        return []
    if not lines:
        note(f"{label}: {path} is empty, skipped")
        return []
    reader = csv.reader(lines, delimiter="\t")
    header = [h.strip() for h in next(reader)]
    if "tool" not in header:
        note(f"{label}: {path} has no 'tool' column in its header, skipped")
        return []
    rows = []
    for fields in reader:
        if [x.strip() for x in fields] == header:  # a header repeated by appending
            continue
        row = dict(zip(header, (x.strip() for x in fields)))
        if row.get("tool"):
            rows.append(row)
    return rows


def num(row, col):
    """The column as a float, or None when missing or not a number."""
    try:
        v = float(row[col])
    except (KeyError, TypeError, ValueError):
        return None
    return v if v == v else None  # NaN


def per_tool(rows, col, label):
    """{tool: median of col over the tool's rows}, tools in first-seen order."""
    values = {}
    for row in rows:
        v = num(row, col)
        if v is None:
            note(f"{label}: {row.get('tool')}: no number in column {col}, row skipped")
            continue
        values.setdefault(row["tool"], []).append(v)
    return {t: statistics.median(v) for t, v in values.items()}


def truthy(s):
    return str(s).strip().lower() in ("1", "yes", "true", "y", "ok")


class Colours:
    def __init__(self):
        self.map = {BASELINE: PALETTE[0]}

    def __call__(self, tool):
        if tool not in self.map:
            self.map[tool] = PALETTE[len(self.map) % len(PALETTE)]
        return self.map[tool]


def ordered(tools):
    """tributary first, then the peers in the order they came."""
    tools = list(tools)
    return sorted(tools, key=lambda t: (t != BASELINE, tools.index(t)))


def fmt(v):
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def bar_panels(panels, title, ylabel, path, colour, log=False):
    """panels: [(panel title, {tool: value})]; one bar chart per panel."""
    panels = [(t, d) for t, d in panels if d]
    if not panels:
        note(f"nothing to draw for {os.path.basename(path)}")
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.8, 4.4), squeeze=False)
    for ax, (ptitle, data) in zip(axes[0], panels):
        tools = ordered(data)
        vals = [data[t] for t in tools]
        bars = ax.bar(range(len(tools)), vals, color=[colour(t) for t in tools])
        ax.set_xticks(range(len(tools)))
        ax.set_xticklabels(tools, rotation=25, ha="right", fontsize=9)
        ax.set_title(ptitle, fontsize=10)
        if log and all(v > 0 for v in vals) and max(vals) / min(vals) > 50:
            ax.set_yscale("log")
            ax.set_ylabel(ylabel + " (log scale)", fontsize=9)
        else:
            ax.set_ylabel(ylabel, fontsize=9)
            ax.yaxis.set_major_formatter(THOUSANDS)
        for b, v in zip(bars, vals):
            ax.annotate(fmt(v), (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
        ax.margins(y=0.12)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def appends_points(rows):
    """{tool: {rate: row}}: one row per tool and rate (the last one given)."""
    points = {}
    for row in rows:
        rate = num(row, "rate")
        if rate is None:
            note(f"appends: {row.get('tool')}: no rate, row skipped")
            continue
        points.setdefault(row["tool"], {})[rate] = row
    return points


def appends_per_cpu(points):
    """Lines per CPU-second (1e6 / cpu_per_line_us) at the highest rate every
    tool has a row for (else each tool's highest), and the panel's title."""
    if not points:
        return "appends", {}
    common = set.intersection(*(set(p) for p in points.values()))
    out = {}
    for tool, by_rate in points.items():
        rates = sorted(common or by_rate, reverse=True)
        for rate in rates:
            us = num(by_rate[rate], "cpu_per_line_us")
            if us and us > 0:
                out[tool] = 1e6 / us
                break
    if common:
        return f"appends at {max(common):,.0f} lines/s", out
    return "appends (each tool's highest rate)", out


def chart_per_cpu(cold, tables, points, colour, out):
    apt, apd = appends_per_cpu(points)
    return bar_panels(
        [(SCENARIOS["cold"], per_tool(cold, "records_per_cpu_s", "cold")),
         (SCENARIOS["tables"], per_tool(tables, "records_per_cpu_s", "tables")),
         (apt, apd)],
        "records per CPU-second (higher is better)", "records / CPU-s",
        os.path.join(out, "records_per_cpu_second.png"), colour, log=True)


def chart_latency(points, colour, out):
    path = os.path.join(out, "p99_latency_vs_rate.png")
    series = {}
    for tool, by_rate in points.items():
        pts = [(r, num(row, "p99_ms"), truthy(row.get("kept_up", "1")))
               for r, row in sorted(by_rate.items())]
        pts = [p for p in pts if p[1] is not None]
        if pts:
            series[tool] = pts
    if not series:
        note("nothing to draw for p99_latency_vs_rate.png")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.6))
    any_missed = False
    for tool in ordered(series):
        pts = series[tool]
        c = colour(tool)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", color=c, label=tool, alpha=0.8)
        ok = [p for p in pts if p[2]]
        bad = [p for p in pts if not p[2]]
        ax.plot([p[0] for p in ok], [p[1] for p in ok], "o", color=c)
        if bad:
            any_missed = True
            ax.plot([p[0] for p in bad], [p[1] for p in bad], "x", color=c, markersize=9, mew=2)
    ax.set_xlabel("offered rate (lines/s)")
    ax.set_ylabel("p99 latency (ms)")
    rates = [p[0] for pts in series.values() for p in pts]
    lat = [p[1] for pts in series.values() for p in pts]
    if min(rates) > 0 and max(rates) / min(rates) > 20:
        ax.set_xscale("log")
    if min(lat) > 0 and max(lat) / min(lat) > 20:
        ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    title = "append latency, p99 (lower is better)"
    if any_missed:
        title += "\nx: the tool fell behind the offered rate"
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def chart_reliability(rows, colour, out):
    path = os.path.join(out, "kill9_loss_duplication.png")
    agg = {}
    for row in rows:
        vals = {c: num(row, c) for c in ("written", "kills", "missing", "duplicated")}
        if vals["missing"] is None or vals["duplicated"] is None:
            note(f"reliability: {row.get('tool')}: no missing/duplicated numbers, row skipped")
            continue
        a = agg.setdefault(row["tool"], {c: 0.0 for c in vals})
        for c, v in vals.items():
            a[c] += v or 0
    if not agg:
        note("nothing to draw for kill9_loss_duplication.png")
        return False
    tools = ordered(agg)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(tools) + 2), 4.6))
    w = 0.38
    xs = range(len(tools))
    for i, (col, hatch) in enumerate((("missing", ""), ("duplicated", "//"))):
        vals = [agg[t][col] for t in tools]
        bars = ax.bar([x + (i - 0.5) * w for x in xs], vals, w, hatch=hatch,
                      color=[colour(t) for t in tools], edgecolor="black", linewidth=0.6,
                      label=col)
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8, xytext=(0, 2),
                        textcoords="offset points")
    labels = []
    for t in tools:
        a = agg[t]
        extra = []
        if a["kills"]:
            extra.append(f"{a['kills']:,.0f} kills")
        if a["written"]:
            extra.append(f"{a['written']:,.0f} written")
        labels.append(t + ("\n" + ", ".join(extra) if extra else ""))
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("records")
    ax.set_ylim(bottom=0, top=max(1, max(max(a["missing"], a["duplicated"]) for a in agg.values())) * 1.18)
    ax.legend(handles=[Patch(facecolor="white", edgecolor="black", label="missing"),
                       Patch(facecolor="white", edgecolor="black", hatch="//", label="duplicated")],
              fontsize=9)
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("records missing and duplicated after kill -9 (lower is better)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def chart_rss(cold, tables, points, metrics, colour, out):
    appends_rss = {}
    for tool, by_rate in points.items():
        v = [num(row, "rss_mb") for row in by_rate.values()]
        v = [x for x in v if x is not None]
        if v:
            appends_rss[tool] = max(v)
    return bar_panels(
        [(SCENARIOS["cold"], per_tool(cold, "rss_mb", "cold")),
         (SCENARIOS["tables"], per_tool(tables, "rss_mb", "tables")),
         ("appends (highest over rates)", appends_rss),
         (SCENARIOS["metrics"], per_tool(metrics, "rss_mb", "metrics"))],
        "peak RSS (lower is better)", "MB", os.path.join(out, "peak_rss.png"), colour)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory for the PNG files")
    ap.add_argument("--cold", help="cold read TSV")
    ap.add_argument("--tables", help="CSV table TSV (cold read columns)")
    ap.add_argument("--appends", help="appends TSV")
    ap.add_argument("--reliability", help="kill -9 TSV")
    ap.add_argument("--metrics", help="host metrics TSV")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    cold = read_tsv(a.cold, "cold")
    tables = read_tsv(a.tables, "tables")
    points = appends_points(read_tsv(a.appends, "appends"))
    reliability = read_tsv(a.reliability, "reliability")
    metrics = read_tsv(a.metrics, "metrics")
    colour = Colours()
    # Colours by first appearance over every file, so a tool keeps its colour.
    for rows in (cold, tables, reliability, metrics):
        for row in rows:
            colour(row["tool"])
    for tool in points:
        colour(tool)
    written = []
    for name, ok in (
        ("records_per_cpu_second.png", chart_per_cpu(cold, tables, points, colour, a.out)),
        ("p99_latency_vs_rate.png", chart_latency(points, colour, a.out)),
        ("kill9_loss_duplication.png", chart_reliability(reliability, colour, a.out)),
        ("peak_rss.png", chart_rss(cold, tables, points, metrics, colour, a.out)),
    ):
        if ok:
            written.append(os.path.join(a.out, name))
    for p in written:
        print(p)
    if not written:
        note("no chart written: no data in the given files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
