"""Draw an :class:`~kgrag.explain.subgraph.EvidenceSubgraph`: PNG, SVG, or a self-contained HTML page with hover details.

The layout is deliberate, not a force simulation:

* with option nodes (MCQ): question entities in a column on the left, options in a column on the right (the
  chosen one green, the gold one ringed in gold), nodes that touch an option between them, and the rest of
  the graph context in columns further left, grouped by the entity they hang from;
* without (free text, true/false): question entities in the middle, the context on rings around them, each
  entity's neighbours in one sector.

Deciding edges are thick red, option-joining edges orange, both labelled with their type and sources; context
edges are thin and coloured by type (a legend names the types); passages are grey squares joined by dotted
lines to the entities and options they name. The title holds the question, the answer, what decided it (and
the gold answer when given), the gate's decisions; the caption says how many edges were left out.

SVG and HTML carry a ``<title>`` tooltip on every node and edge (ids, sources, evidence properties, the
sentence); the HTML file is the SVG inside a small page with no script and no network reference.

Example::

    from kgrag.explain.picture import show, write_picture
    from kgrag.explain.subgraph import build_subgraph
    graph = build_subgraph(answer, options=options)
    write_picture(graph, "evidence.svg")
    show(graph)   # in a notebook: the PNG inline
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import tempfile
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from kgrag.errors import InputError
from kgrag.explain.subgraph import EvidenceSubgraph, SubgraphEdge, SubgraphNode

Format = Literal["png", "svg", "html"]
FORMATS: dict[str, Format] = {".png": "png", ".svg": "svg", ".html": "html", ".htm": "html"}
SVG_NS = "http://www.w3.org/2000/svg"

ROLE_STYLE: dict[str, dict[str, Any]] = {
    "deciding": {"color": "#d62728", "lw": 3.4, "ls": "-", "alpha": 0.95},
    "option": {"color": "#ff7f0e", "lw": 2.2, "ls": "-", "alpha": 0.9},
    "context": {"color": None, "lw": 0.8, "ls": "-", "alpha": 0.55},
    "mention": {"color": "#7f7f7f", "lw": 1.0, "ls": ":", "alpha": 0.8},
    "claim": {"color": "#1f77b4", "lw": 1.8, "ls": "--", "alpha": 0.9},
}
CLAIM_COLORS = {"CLAIM_graph": "#2ca02c", "CLAIM_inferred": "#98df8a", "CLAIM_corpus": "#1f77b4",
                "CLAIM_unsupported": "#d62728", "CLAIM_unknown": "#7f7f7f"}
LABEL_COLORS = {"Disease": "#8c564b", "Gene": "#9467bd", "Compound": "#e377c2", "Variant": "#17becf",
                "Symptom": "#bcbd22", "Anatomy": "#7f7f7f", "Passage": "#b0b0b0"}
CONTEXT_PALETTE = ["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#aec7e8",
                   "#c5b0d5", "#c49c94"]
ENTITY_COLOR, OPTION_COLOR, CHOSEN_COLOR, WRONG_COLOR, GOLD_COLOR = "#4c72b0", "#ffd8a8", "#2ca02c", "#d62728", "#daa520"


class PictureFormatError(InputError):
    """The picture's file name has a suffix we cannot write (the CLI exits with 2)."""


class Layout(BaseModel):
    """Node positions (x, y) and which side each node's label goes on."""

    pos: dict[str, tuple[float, float]]
    label_side: dict[str, Literal["left", "right", "above", "below"]]
    width: float
    height: float


def picture_format(path: Path | str) -> Format:
    """``png``, ``svg`` or ``html`` from a file name; :class:`PictureFormatError` for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise PictureFormatError(f"cannot write a picture to {str(path)!r}: the name must end in "
                                 f"{', '.join(sorted(FORMATS))} (got {suffix or 'no suffix'!r})")
    return FORMATS[suffix]


# --- layout ------------------------------------------------------------------------------------------


def _neighbours(graph: EvidenceSubgraph) -> dict[str, list[str]]:
    adj: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        adj.setdefault(e.source, []).append(e.target)
        adj.setdefault(e.target, []).append(e.source)
    return adj


def _spread(n: int, top: float, bottom: float) -> list[float]:
    """n values evenly spread from top to bottom (one value: the middle)."""
    if n <= 1:
        return [(top + bottom) / 2]
    return [top + (bottom - top) * i / (n - 1) for i in range(n)]


def _anchor(node_id: str, adj: dict[str, list[str]], order: dict[str, int]) -> int:
    """The first entity (in entity order) a node hangs from; nodes hanging from none sort last."""
    return min((order[m] for m in adj.get(node_id, []) if m in order), default=len(order))


def layout(graph: EvidenceSubgraph) -> Layout:
    """Columns when the subgraph has option nodes, rings around the entities otherwise."""
    if any(n.role == "option" for n in graph.nodes):
        return _columns(graph)
    return _rings(graph)


def _columns(graph: EvidenceSubgraph) -> Layout:
    adj = _neighbours(graph)
    entities = [n.id for n in graph.nodes if n.role == "entity"]
    options = [n.id for n in graph.nodes if n.role == "option"]
    placed = set(entities) | set(options)
    order = {nid: i for i, nid in enumerate(entities)}
    middle = [n.id for n in graph.nodes if n.id not in placed and any(m in options for m in adj.get(n.id, []))]
    rest = [n.id for n in graph.nodes if n.id not in placed and n.id not in middle]
    rest.sort(key=lambda nid: _anchor(nid, adj, order))
    n_columns = max(1, math.ceil(len(rest) / 18))
    per_column = math.ceil(len(rest) / n_columns) if rest else 0
    # row by row across the columns, so each entity's neighbours sit in the band of rows at its height
    columns = [rest[c::n_columns] for c in range(n_columns)] if rest else []
    rows = max([len(entities), len(options), len(middle), per_column, 4])
    height = rows * 0.42
    pos: dict[str, tuple[float, float]] = {}
    side: dict[str, Literal["left", "right", "above", "below"]] = {}
    col_w, gap = 2.6, 7.0  # data units: a context column's width; entities to options
    x_entity = len(columns) * col_w
    # y grows upwards: the first entity, option and context node are on top
    for nid, y in zip(entities, _spread(len(entities), height * 0.8, height * 0.2)):
        pos[nid], side[nid] = (x_entity, y), "above"
    for nid, y in zip(options, _spread(len(options), height * 0.9, height * 0.1)):
        pos[nid], side[nid] = (x_entity + gap, y), "right"
    for nid, y in zip(middle, _spread(len(middle), height * 0.95, height * 0.05)):
        pos[nid], side[nid] = (x_entity + gap / 2, y), "above"
    for c, column in enumerate(columns):
        x = x_entity - (c + 1) * col_w
        for nid, y in zip(column, _spread(per_column, height, 0.0)):
            pos[nid], side[nid] = (x, y), "left"
    return Layout(pos=pos, label_side=side, width=x_entity + gap + 3.5, height=height)


def _rings(graph: EvidenceSubgraph) -> Layout:
    adj = _neighbours(graph)
    entities = [n.id for n in graph.nodes if n.role == "entity"]
    order = {nid: i for i, nid in enumerate(entities)}
    # nodes a deciding, option, claim or passage edge touches go on the inner ring, spread out (their edge
    # labels then do not pile up); the rest follow, grouped by the entity they hang from
    marked = {n for e in graph.edges if e.role != "context" for n in (e.source, e.target)} - set(order)
    others = sorted((n.id for n in graph.nodes if n.id not in order),
                    key=lambda nid: (nid not in marked, _anchor(nid, adj, order)))
    pos: dict[str, tuple[float, float]] = {}
    side: dict[str, Literal["left", "right", "above", "below"]] = {}
    inner = 0.0 if len(entities) <= 1 else 1.4
    for i, nid in enumerate(entities):
        angle = math.pi / 2 + 2 * math.pi * i / max(1, len(entities))
        pos[nid] = (inner * math.cos(angle), inner * math.sin(angle))
        side[nid] = "below" if len(entities) == 1 or pos[nid][1] < 0 else "above"
    ring_sizes: list[int] = []
    left = len(others)
    radius_sizes = [(4.2, 22), (7.4, 38), (10.4, 60)]
    for _, size in radius_sizes:
        take = min(left, size)
        ring_sizes.append(take)
        left -= take
    if left:
        ring_sizes[-1] += left
    cursor = 0
    for number, ((radius, _), count) in enumerate(zip(radius_sizes, ring_sizes)):
        ring = _spread_marked(others[cursor:cursor + count], marked)
        cursor += count
        offset = (0.5, 0.25, 0.75)[min(number, 2)]  # half a slot off the vertical, where two entities sit
        for k, nid in enumerate(ring):
            angle = math.pi / 2 - 2 * math.pi * (k + offset) / max(1, len(ring))
            x, y = radius * math.cos(angle), radius * math.sin(angle)
            pos[nid] = (x, y)
            side[nid] = "right" if x > 0.3 else "left" if x < -0.3 else ("above" if y > 0 else "below")
    span = max([abs(c) for p in pos.values() for c in p] + [1.0])
    return Layout(pos=pos, label_side=side, width=2 * span + 6, height=2 * span + 2)


def _spread_marked(ring: list[str], marked: set[str]) -> list[str]:
    """The ring's order with its marked nodes at evenly spaced slots, the others filling the gaps in order."""
    chosen = [n for n in ring if n in marked]
    if not chosen or len(chosen) == len(ring):
        return ring
    rest = iter(n for n in ring if n not in marked)
    slots = {round(k * len(ring) / len(chosen)) for k in range(len(chosen))}
    picks = iter(chosen)
    return [next(picks) if i in slots else next(rest) for i in range(len(ring))]


# --- drawing -----------------------------------------------------------------------------------------


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _edge_color(edge: SubgraphEdge, type_colors: dict[str, str]) -> str:
    if edge.role == "claim":
        return CLAIM_COLORS.get(edge.type, "#1f77b4")
    return ROLE_STYLE[edge.role]["color"] or type_colors.get(edge.type, "#999999")


def node_tooltip(node: SubgraphNode) -> str:
    """The hover text of a node: name, label, id, role and what it stands for."""
    lines = [f"{node.name} ({node.label})", f"id: {node.id}", f"role: {node.role}"]
    if node.option:
        lines.append(f"option: {node.option}" + (" — chosen" if node.chosen else "") + (" — gold" if node.gold else ""))
    if node.mention:
        lines.append(f"linked from '{node.mention}' by {node.link_method}")
    if node.sources:
        lines.append("sources: " + ", ".join(node.sources))
    if node.text:
        lines.append(node.text)
    return "\n".join(lines)


def edge_tooltip(edge: SubgraphEdge) -> str:
    """The hover text of an edge: type, role, sources, score, evidence properties and the sentence."""
    lines = [f"{edge.type} ({edge.role})", f"{edge.source} → {edge.target}", "sources: " + (", ".join(edge.sources) or "-")]
    if edge.support and edge.support != "direct":
        lines.append(f"inferred support ({edge.support})")
    if edge.score is not None:
        lines.append(f"similarity to the question: {edge.score:.3f}")
    if edge.option:
        lines.append(f"joins option {edge.option}")
    for key, value in edge.properties.items():
        lines.append(f"{key}: {json.dumps(value, default=str)[:120]}")
    if edge.text:
        lines.append(edge.text)
    return "\n".join(lines)


def _title_lines(graph: EvidenceSubgraph, title: str | None) -> list[str]:
    lines = textwrap.wrap((f"[{graph.question_id}] " if graph.question_id else "") + graph.question, 120)
    if title:
        lines.insert(0, title)
    answer = graph.choice or ("none (abstained)" if graph.abstained else _short(" ".join(graph.answer_text.split()), 90))
    how = "" if graph.abstained else f"   (decided by {graph.decided_by})"
    verdict = ""
    if graph.gold is not None:
        right = graph.correct
        verdict = f"   gold: {graph.gold}" + ("" if right is None else " — correct" if right else " — WRONG")
    lines.append(f"answer: {answer}{how}{verdict}")
    if graph.decision:
        lines += textwrap.wrap(f"evidence check: {graph.decision}", 140)
    lines += [_short("; ".join(graph.gate), 160)]
    return lines


def _caption(graph: EvidenceSubgraph) -> str:
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    parts = [f"{count(len(graph.nodes), 'node')} and {count(len(graph.edges), 'edge')} shown; {graph.edges_left_out} of "
             f"{count(graph.edges_total, 'edge')} left out to stay under {graph.max_nodes} nodes (deciding edges, option "
             "edges, passages, then the context most similar to the question kept first)"]
    if graph.pruned:
        parts.append(f"{graph.pruned} candidates were pruned before answering")
    if graph.passages_unlinked:
        parts.append(f"{graph.passages_unlinked} passages name no entity or option (not drawn)")
    return "; ".join(parts) + ". Hover in the SVG/HTML for sources and evidence properties."


def draw(graph: EvidenceSubgraph, *, title: str | None = None) -> Any:
    """A matplotlib Figure of the subgraph (every node and edge artist has a gid: node-<i>, edge-<i>)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    lay = layout(graph)
    nodes = {n.id: n for n in graph.nodes}
    head = _title_lines(graph, title)
    fig_w = min(18.0, max(12.0, lay.width * 0.95))
    fig_h = min(16.0, max(7.0, lay.height * (fig_w / max(lay.width, 1.0)) + 0.32 * len(head) + 1.0))
    fig = Figure(figsize=(fig_w, fig_h))  # not pyplot's: nothing is registered or shown twice in notebooks
    header_in, caption_in = 0.25 + 0.30 * len(head), 0.55
    ax = fig.add_axes((0.01, caption_in / fig_h, 0.80, 1 - (header_in + caption_in) / fig_h))
    ax.set_axis_off()
    types = sorted({e.type for e in graph.edges if e.role == "context"})
    type_colors = {t: CONTEXT_PALETTE[i % len(CONTEXT_PALETTE)] for i, t in enumerate(types)}

    pair_count: dict[frozenset[str], int] = {}
    for i, edge in enumerate(sorted(graph.edges, key=lambda e: -{"context": 0, "mention": 1, "claim": 2, "option": 3,
                                                                    "deciding": 4}[e.role])):
        if edge.source not in lay.pos or edge.target not in lay.pos:
            continue
        style = ROLE_STYLE[edge.role]
        pair = frozenset((edge.source, edge.target))
        k = pair_count.get(pair, 0)
        pair_count[pair] = k + 1
        rad = 0.0 if k == 0 else 0.15 * ((k + 1) // 2) * (1 if k % 2 else -1)
        (x1, y1), (x2, y2) = lay.pos[edge.source], lay.pos[edge.target]
        big = edge.role in ("deciding", "option")
        arrow = FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>" if edge.role != "mention" else "-",
                                mutation_scale=14 if big else 7, connectionstyle=f"arc3,rad={rad}",
                                color=_edge_color(edge, type_colors), lw=style["lw"], ls=style["ls"], alpha=style["alpha"],
                                shrinkA=14 if nodes[edge.source].role in ("entity", "option") else 5,
                                shrinkB=14 if nodes[edge.target].role in ("entity", "option") else 5,
                                zorder=3 if big else 1)
        arrow.set_gid(f"edge-{i}")
        ax.add_patch(arrow)
        if big or edge.role == "claim":
            t = 0.62 if edge.role == "claim" else 0.5  # claims share an end with context edges: label nearer the far end
            mx, my = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
            if rad:
                mx, my = mx + rad * (y2 - y1) * 0.5, my - rad * (x2 - x1) * 0.5
            label = f"{edge.type}\n{_short(', '.join(edge.sources) or 'no sources', 40)}"
            ax.text(mx, my, label, fontsize=8 if big else 7, ha="center", va="center", zorder=6,
                    color=_edge_color(edge, type_colors), fontweight="bold" if edge.role == "deciding" else "normal",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85})

    for i, node in enumerate(graph.nodes):
        x, y = lay.pos[node.id]
        size, marker, face, edgecolor, lw = 80.0, "o", LABEL_COLORS.get(node.label, "#999999"), "white", 0.8
        if node.role == "entity":
            size, face, edgecolor, lw = 700.0, ENTITY_COLOR, "#1b3a6b", 2.0
        elif node.role == "option":
            size, face, edgecolor, lw = 520.0, OPTION_COLOR, "#a0522d", 1.5
            if node.chosen:
                face, edgecolor, lw = (CHOSEN_COLOR if graph.correct is not False else WRONG_COLOR), "#114411", 2.5
            if node.label == "Option":
                marker = "D"
        elif node.role == "passage":
            marker, size = "s", 90.0
        elif node.role == "claimed":
            face, edgecolor, lw, size = "white", "#555555", 1.2, 160.0
        if node.gold:
            ax.scatter([x], [y], s=size * 2.1, marker=marker, facecolors="none", edgecolors=GOLD_COLOR, linewidths=3.5,
                       zorder=4)
        coll = ax.scatter([x], [y], s=size, marker=marker, c=face, edgecolors=edgecolor, linewidths=lw, zorder=5)
        coll.set_gid(f"node-{i}")
        score = (graph.option_scores or {}).get(node.option) if node.option else None
        _node_label(ax, node, (x, y), lay.label_side[node.id], score)

    xs = [p[0] for p in lay.pos.values()] or [0.0]
    ys = [p[1] for p in lay.pos.values()] or [0.0]
    pad_x = max(1.5, 0.1 * (max(xs) - min(xs)))
    ax.set_xlim(min(xs) - pad_x - (1.8 if any(s == "left" for s in lay.label_side.values()) else 0),
                max(xs) + pad_x + (2.2 if any(s == "right" for s in lay.label_side.values()) else 0))
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)

    for k, line in enumerate(head):
        fig.text(0.01, 1 - (0.12 + 0.30 * k) / fig_h, line, fontsize=12 if k == 0 else 10, va="top",
                 fontweight="bold" if k == 0 else "normal",
                 color=(WRONG_COLOR if graph.correct is False else "black") if line.startswith("answer:") else "black")
    fig.text(0.01, 0.012, "\n".join(textwrap.wrap(_caption(graph), 200)), fontsize=8, color="#444444", va="bottom")

    handles = []
    if any(n.role == "entity" for n in graph.nodes):
        handles.append(Line2D([], [], marker="o", ls="", ms=11, mfc=ENTITY_COLOR, mec="#1b3a6b", label="question entity"))
    options = [n for n in graph.nodes if n.role == "option"]
    if options:
        chosen_color = CHOSEN_COLOR if graph.correct is not False else WRONG_COLOR
        handles += [Line2D([], [], marker="o", ls="", ms=10, mfc=OPTION_COLOR, mec="#a0522d", label="option"),
                    Line2D([], [], marker="o", ls="", ms=10, mfc=chosen_color, mec="#114411",
                           label="chosen option" + (" (wrong)" if graph.correct is False else ""))]
    if any(n.label == "Option" for n in options):
        handles.append(Line2D([], [], marker="D", ls="", ms=8, mfc=OPTION_COLOR, mec="#a0522d", label="option not in the graph"))
    if any(n.role == "claimed" for n in graph.nodes):
        handles.append(Line2D([], [], marker="o", ls="", ms=9, mfc="white", mec="#555555", label="named in the answer only"))
    if any(n.gold for n in graph.nodes):
        handles.append(Line2D([], [], marker="o", ls="", ms=13, mfc="none", mec=GOLD_COLOR, mew=3, label="gold answer"))
    for label in sorted({n.label for n in graph.nodes if n.role in ("neighbour", "passage")}):
        handles.append(Line2D([], [], marker="s" if label == "Passage" else "o", ls="", ms=7,
                              mfc=LABEL_COLORS.get(label, "#999999"), mec="white", label=label))
    roles_present = {e.role for e in graph.edges}
    for role, text in (("deciding", "deciding edge"), ("option", "option-joining edge"), ("mention", "passage names it")):
        if role in roles_present:
            s = ROLE_STYLE[role]
            handles.append(Line2D([], [], color=s["color"], lw=s["lw"], ls=s["ls"], label=text))
    for t in {e.type for e in graph.edges if e.role == "claim"}:
        handles.append(Line2D([], [], color=CLAIM_COLORS.get(t, "#1f77b4"), lw=1.8, ls="--",
                              label=f"claim: {t.removeprefix('CLAIM_')}"))
    for t, color in type_colors.items():
        handles.append(Line2D([], [], color=color, lw=1.5, label=t))
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False, bbox_to_anchor=(0.995, 0.5))
    return fig


def _node_label(ax: Any, node: SubgraphNode, xy: tuple[float, float], side: str, llm_score: float | None) -> None:
    x, y = xy
    major = node.role in ("entity", "option")
    text = _short(node.name, 38 if major else 26)
    if major and not node.id.startswith("option:"):
        text += f"\n{node.id}"
    tags = []
    if node.chosen:
        tags.append("✓ chosen")
    if node.gold:
        tags.append("★ gold")
    if llm_score is not None:
        tags.append(f"LLM score {llm_score:.2f}")
    if tags:
        text += "\n" + "  ".join(tags)
    near = 0.3 if major else 0.18
    offsets = {"left": (-near, 0.0, "right", "center"), "right": (near, 0.0, "left", "center"),
               "above": (0.0, near, "center", "bottom"), "below": (0.0, -near, "center", "top")}
    dx, dy, ha, va = offsets[side]
    ax.text(x + dx, y + dy, text, ha=ha, va=va, zorder=7,
            fontsize=11 if node.role == "entity" else 10 if node.role == "option" else 7.5,
            fontweight="bold" if major else "normal", color="#222222",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7} if major else None)


# --- output ------------------------------------------------------------------------------------------


def _svg_with_tooltips(fig: Any, graph: EvidenceSubgraph) -> str:
    """The figure as SVG text, with a <title> tooltip inside every node and edge group."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "kgrag"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(buf.getvalue())
    tips: dict[str, str] = {f"node-{i}": node_tooltip(n) for i, n in enumerate(graph.nodes)}
    ordered = sorted(graph.edges, key=lambda e: -{"context": 0, "mention": 1, "claim": 2, "option": 3, "deciding": 4}[e.role])
    tips.update({f"edge-{i}": edge_tooltip(e) for i, e in enumerate(ordered)})
    for element in root.iter():
        gid = element.get("id")
        if gid in tips:
            title = ET.Element(f"{{{SVG_NS}}}title")
            title.text = tips[gid]
            element.insert(0, title)
            element.set("class", "hover")
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag == f"{{{SVG_NS}}}metadata":
                parent.remove(child)
    return ET.tostring(root, encoding="unicode")


def _html_page(svg: str, graph: EvidenceSubgraph) -> str:
    """A self-contained page: the SVG inline, hover styles, and the answer in words. No script, no network."""
    correct = "" if graph.correct is None else (" — correct" if graph.correct else " — wrong")
    gold = f"<p><b>Gold:</b> {html.escape(graph.gold)}{correct}</p>" if graph.gold is not None else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Evidence: {html.escape(_short(graph.question, 80))}</title>"
        "<style>body{font-family:sans-serif;margin:1em} svg{max-width:100%;height:auto}"
        ".hover:hover{opacity:0.6;cursor:help} p{margin:.3em 0}</style></head><body>\n"
        f"<h2>{html.escape(graph.question)}</h2>"
        f"<p><b>Answer:</b> {html.escape(graph.choice or graph.answer_text or '(none)')} "
        f"(decided by {html.escape(graph.decided_by)})</p>{gold}"
        f"<p><b>Evidence check:</b> {html.escape(graph.decision or '-')}</p>"
        f"<p>{html.escape('; '.join(graph.gate))}</p>"
        "<p><i>Hover over a node or an edge for its ids, sources, evidence properties and sentence.</i></p>\n"
        f"{svg}\n</body></html>\n")


def render_bytes(graph: EvidenceSubgraph, fmt: Format, *, title: str | None = None, dpi: int = 100) -> bytes:
    """The picture as bytes in ``fmt`` (png, svg, html)."""
    fig = draw(graph, title=title)
    if fmt == "png":
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    svg = _svg_with_tooltips(fig, graph)
    if fmt == "svg":
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + svg).encode("utf-8")
    return _html_page(svg, graph).encode("utf-8")


def write_picture(graph: EvidenceSubgraph, path: Path | str, *, title: str | None = None) -> Path:
    """Write the picture to ``path`` (format from the suffix: .png, .svg, .html) atomically; return the path.

    :class:`PictureFormatError` (an InputError: exit 2) for another suffix; an OSError when the folder is not
    writable."""
    path = Path(path)
    data = render_bytes(graph, picture_format(path), title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def show(graph: EvidenceSubgraph, *, title: str | None = None) -> Any:
    """The picture as a notebook cell's output: an ``IPython.display.Image`` of the PNG."""
    try:
        from IPython.display import Image
    except ImportError as exc:  # pragma: no cover - IPython comes with Jupyter
        raise InputError("show() draws for a notebook and needs IPython; use write_picture(graph, path) elsewhere") from exc
    return Image(data=render_bytes(graph, "png", title=title))
