"""The QA report's charts as SVG, drawn here (no chart library, nothing from outside).

Two charts (issue 12, point 5): each standard's monthly % over time (a line per standard),
and handlers trained / expired / untrained per training module (a stacked bar per module).
Pure functions of the report and the training summary: the same SVG is shown inline on the
QA report page and downloaded from `GET /api/v1/qa/report.svg`.

Accessible on their own: `role="img"` named by a `<title>` and described by a `<desc>` that
says every value in words (the page's table holds the same figures); series differ by
marker shape and dash as well as colour, and the bars carry their counts as text, so nothing
is told by colour alone. Every text is escaped: labels come from a force's own form pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from app.qa import months
from app.qa.schemas import Report, TrainingSummary

WIDTH = 760
FONT = "system-ui, 'Segoe UI', Roboto, Arial, sans-serif"
INK = "#1b1f24"
MUTED = "#5b6470"
GRID = "#d5d9df"


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str  # circle | square | triangle | diamond
    dash: str  # stroke-dasharray, "" for solid


# Colours with at least 3:1 contrast on white, each with its own marker and dash.
SERIES = (
    Style("#1d4f91", "circle", ""),
    Style("#b3261e", "square", "6 3"),
    Style("#245d2d", "triangle", "2 3"),
    Style("#8a5a00", "diamond", "8 3 2 3"),
    Style("#6a1b9a", "circle", "4 4"),
    Style("#00695c", "square", ""),
    Style("#4e342e", "triangle", "6 3"),
    Style("#37474f", "diamond", "2 3"),
)
# Training statuses: colour, and a text count beside every bar.
STATUS = (
    ("trained", "Trained", "#245d2d"),
    ("expired", "Expired", "#b06f00"),
    ("untrained", "Untrained", "#8b95a1"),
)


def _a(value: object) -> str:
    return quoteattr(str(value))


def _t(value: object) -> str:
    return escape(str(value))


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(id_prefix: str, height: int, title: str, desc: str, body: list[str]) -> str:
    return "".join(
        [
            '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" ',
            f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" ',
            f'role="img" aria-labelledby="{id_prefix}-title {id_prefix}-desc" ',
            f'font-family={_a(FONT)} font-size="13" class="chart">',
            f'<title id="{id_prefix}-title">{_t(title)}</title>',
            f'<desc id="{id_prefix}-desc">{_t(desc)}</desc>',
            f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
            *body,
            "</svg>",
        ]
    )


def _marker(shape: str, x: float, y: float, colour: str, tip: str) -> str:
    r = 4.5
    if shape == "square":
        tag, geometry = "rect", f'x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}"'
    elif shape == "triangle":
        tag = "polygon"
        geometry = (
            f'points="{x:.1f},{y - r - 1:.1f} {x + r + 0.5:.1f},{y + r:.1f} '
            f'{x - r - 0.5:.1f},{y + r:.1f}"'
        )
    elif shape == "diamond":
        tag = "polygon"
        geometry = (
            f'points="{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} '
            f'{x:.1f},{y + r + 1:.1f} {x - r - 1:.1f},{y:.1f}"'
        )
    else:
        tag, geometry = "circle", f'cx="{x:.1f}" cy="{y:.1f}" r="{r}"'
    return (
        f'<{tag} {geometry} fill="{colour}" stroke="#ffffff" stroke-width="1">'
        f"<title>{_t(tip)}</title></{tag}>"
    )


def _label(text: str) -> str:
    """A measure's row label without the table's trailing "(%)": the axis says percent."""
    return text[:-3].rstrip() if text.endswith("(%)") else text


def standards_chart(report: Report, id_prefix: str = "qa-standards") -> str:
    """Each standard's % met (of the calls it applied to) per month, a line per standard;
    a month where nothing applied leaves a gap in its line."""
    columns = [m.month for m in report.months]
    series = [(m["id"], _label(m["label"])) for m in report.measures[1:]]
    span = f"{months.display(report.from_month)} to {months.display(report.to_month)}"
    title = f"QA standards met, % per month, {span}"

    left, right, top, plot_h = 56, 24, 44, 220
    plot_w = WIDTH - left - right
    legend_top = top + plot_h + 44
    height = legend_top + 22 * ((len(series) + 1) // 2) + 8

    def x_of(index: int) -> float:
        if len(columns) == 1:
            return left + plot_w / 2
        return left + 12 + index * (plot_w - 24) / (len(columns) - 1)

    def y_of(percent: float) -> float:
        return top + plot_h * (1 - percent / 100)

    body = [
        f'<text x="{left}" y="24" font-size="15" font-weight="700" fill="{INK}">{_t(title)}</text>'
    ]
    for tick in (0, 25, 50, 75, 100):
        y = y_of(tick)
        body.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">{tick}%</text>'
        )
    step = max(1, -(-len(columns) // 12))  # at most 12 month labels
    for index, month in enumerate(columns):
        if index % step == 0 or index == len(columns) - 1:
            body.append(
                f'<text x="{x_of(index):.1f}" y="{top + plot_h + 20}" text-anchor="middle" '
                f'fill="{MUTED}">{_t(months.display(month))}</text>'
            )
    body.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="{MUTED}"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="{MUTED}"/>'
    )

    described: list[str] = []
    for number, (standard_id, label) in enumerate(series):
        style = SERIES[number % len(SERIES)]
        points: list[tuple[float, float, str]] = []
        runs: list[list[tuple[float, float]]] = [[]]
        words: list[str] = []
        for index, row in enumerate(report.months):
            measure = row.standards.get(standard_id)
            name = months.display(row.month)
            if measure is None or measure.percent is None:
                words.append(f"{name} none applicable")
                if runs[-1]:
                    runs.append([])
                continue
            x, y = x_of(index), y_of(measure.percent)
            runs[-1].append((x, y))
            tip = (
                f"{label}, {name}: {_num(measure.percent)}% ({measure.met} of {measure.applicable})"
            )
            points.append((x, y, tip))
            words.append(f"{name} {_num(measure.percent)}%")
        described.append(f"{label}: " + ", ".join(words) + ".")
        dash = f' stroke-dasharray="{style.dash}"' if style.dash else ""
        body.append(f'<g class="series" data-standard={_a(standard_id)}>')
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                body.append(
                    f'<polyline points="{path}" fill="none" stroke="{style.colour}" '
                    f'stroke-width="2.5"{dash}/>'
                )
        body.extend(_marker(style.marker, x, y, style.colour, tip) for x, y, tip in points)
        body.append("</g>")
        # The legend: two columns below the plot.
        lx = left + (number % 2) * (plot_w / 2)
        ly = legend_top + 22 * (number // 2)
        body.append(
            f'<line x1="{lx:.1f}" x2="{lx + 30:.1f}" y1="{ly:.1f}" y2="{ly:.1f}" '
            f'stroke="{style.colour}" stroke-width="2.5"{dash}/>'
            + _marker(style.marker, lx + 15, ly, style.colour, label)
            + f'<text x="{lx + 38:.1f}" y="{ly + 4:.1f}" fill="{INK}">{_t(label)}</text>'
        )
    if not report.months:
        described.append("No months.")
    desc = (
        f"Line chart of the percentage of reviewed calls that met each standard, {span}; "
        "months where no reviewed call applied are gaps. " + " ".join(described)
    )
    return _svg(id_prefix, height, title, desc, body)


def training_chart(summary: TrainingSummary, id_prefix: str = "qa-training") -> str:
    """Active handlers trained, expired and untrained in each training module on a day: a
    stacked bar per module, its counts written beside it."""
    day = f"{summary.on.day} {months.display(summary.on.strftime('%Y-%m'))}"
    title = f"Handlers trained, expired and untrained per module, {day}"
    left, label_w, counts_w, top, bar_h, gap = 16, 268, 196, 44, 22, 14
    bar_x = left + label_w
    bar_w = WIDTH - bar_x - counts_w - 16
    legend_y = top + len(summary.modules) * (bar_h + gap) + 16
    height = legend_y + 24

    body = [
        f'<text x="{left}" y="24" font-size="15" font-weight="700" fill="{INK}">{_t(title)}</text>'
    ]
    described: list[str] = []
    for index, module in enumerate(summary.modules):
        y = top + index * (bar_h + gap)
        total = module.trained + module.expired + module.untrained
        body.append(
            f'<g class="module" data-module={_a(module.module)}>'
            f'<text x="{bar_x - 8}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="{INK}">{_t(module.title)}</text>'
            f'<rect x="{bar_x}" y="{y}" width="{bar_w}" height="{bar_h}" fill="#f4f5f7" '
            f'stroke="{GRID}"/>'
        )
        x = float(bar_x)
        for key, name, colour in STATUS:
            count = getattr(module, key)
            if total and count:
                w = bar_w * count / total
                body.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}" '
                    f'stroke="#ffffff"><title>{_t(f"{module.title}: {count} {name.lower()}")}'
                    "</title></rect>"
                )
                x += w
        counts = f"{module.trained} trained, {module.expired} expired, {module.untrained} untrained"
        body.append(
            f'<text x="{bar_x + bar_w + 10}" y="{y + bar_h / 2 + 4:.1f}" fill="{INK}" '
            f'font-size="12">{_t(counts)}</text></g>'
        )
        described.append(f"{module.title}: {counts}.")
    x = float(bar_x)
    for _key, name, colour in STATUS:
        body.append(
            f'<rect x="{x:.1f}" y="{legend_y - 11}" width="14" height="14" fill="{colour}"/>'
            f'<text x="{x + 20:.1f}" y="{legend_y + 1}" fill="{INK}">{_t(name)}</text>'
        )
        x += 110
    desc = (
        f"Bar chart of the {summary.staff} active handlers' training status in each module "
        f"on {day}. " + " ".join(described)
    )
    return _svg(id_prefix, height, title, desc, body)
