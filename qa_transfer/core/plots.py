"""The project's plots. Each function draws one figure with matplotlib's Agg backend (no display needed), writes
it as a PNG (the file appears whole or not at all) and returns the Figure, so that callers and tests can look at
what was drawn.

Figures are built with `matplotlib.figure.Figure` rather than pyplot, so nothing here changes matplotlib's
global state or keeps figures alive in a process that draws many.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.metrics import auc, confusion_matrix, roc_curve

from qa_transfer.core.results_io import atomic_output


def save_png(figure: Figure, path: str | os.PathLike) -> None:
    """Render `figure` with Agg and write it to `path` atomically (see results_io)."""
    with atomic_output(path, binary=True) as handle:
        FigureCanvasAgg(figure).print_png(handle)


def loss_curve_title(model: str, train: str, validation: str | None) -> str:
    """Which data a loss curve belongs to: the model and its training data, and the validation data when there is
    one; a local file or folder by its name alone (its folder would not fit)."""
    def short(source: str) -> str:
        return os.path.basename(os.path.normpath(source)) if os.path.exists(source) else source

    title = f"{short(model)} trained on {short(train)}"
    return title + (f"\nvalidation loss on {short(validation)}" if validation else "")


def plot_loss_curve(
    log_history: list[dict], path: str | os.PathLike, title: str = "Training and validation loss"
) -> Figure:
    """Training loss (entries with `loss`) and evaluation loss (`eval_loss`) of a Trainer's
    `state.log_history`, against the epoch. Works with a single point of either kind, or none."""
    training = [(entry["epoch"], entry["loss"]) for entry in log_history if "loss" in entry and "epoch" in entry]
    evaluation = [
        (entry["epoch"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry and "epoch" in entry
    ]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    if training:
        axes.plot(*zip(*training, strict=True), marker="o", label="training loss")
    if evaluation:
        axes.plot(*zip(*evaluation, strict=True), marker="s", label="validation loss")
    if training or evaluation:
        axes.legend()
    else:
        axes.text(0.5, 0.5, "no loss was logged", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    save_png(figure, path)
    return figure


def plot_roc_curves(
    labels: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    label_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "ROC curves (one-vs-rest)",
) -> Figure:
    """One figure, one ROC curve per class (that class against the rest) with its AUC in the legend.

    `probabilities[i, c]` is the predicted probability of class c for example i. A class with no examples
    in `labels` (or only examples of it) has no curve and is listed as such.
    """
    labels = np.asarray(labels)
    figure = Figure(figsize=(6.5, 6), layout="constrained")
    axes = figure.add_subplot()
    for index, name in enumerate(label_names):
        is_class = labels == index
        if not is_class.any() or is_class.all():
            axes.plot([], [], label=f"{name} (no curve: one-sided labels)")
            continue
        false_positive_rate, true_positive_rate, _ = roc_curve(is_class, probabilities[:, index])
        area = auc(false_positive_rate, true_positive_rate)
        axes.plot(false_positive_rate, true_positive_rate, label=f"{name} (AUC = {area:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(title)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    save_png(figure, path)
    return figure


def plot_confusion_matrix(
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
) -> Figure:
    """Counts of true (rows) against predicted (columns) classes, each cell with its share of the row."""
    matrix = confusion_matrix(labels, predictions, labels=list(range(len(label_names))))
    row_totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, row_totals, out=np.zeros(matrix.shape), where=row_totals > 0)
    figure = Figure(figsize=(1.6 * len(label_names) + 2.5, 1.4 * len(label_names) + 2), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of the true class")
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            colour = "white" if shares[row, column] > 0.5 else "black"
            text = f"{matrix[row, column]}\n{shares[row, column]:.0%}"
            axes.text(column, row, text, ha="center", va="center", color=colour)
    axes.set_xticks(range(len(label_names)), labels=label_names)
    axes.set_yticks(range(len(label_names)), labels=label_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    save_png(figure, path)
    return figure


def plot_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    path: str | os.PathLike,
    metric_name: str = "F1",
    in_domain: Sequence[tuple[int, int]] = (),
    title: str = "Fine-tuned on (rows) -> evaluated on (columns)",
    cell_text: Sequence[Sequence[str]] | None = None,
    footnote: str | None = None,
) -> Figure:
    """An annotated matrix of scores in [0, 100]; NaN cells are grey and marked "-", or with their `cell_text`
    (e.g. "failed"), which also replaces the score of other cells when given; `footnote` explains the marks.

    The `in_domain` cells (row, column) are outlined, so the diagonal stays visible when rows and columns are
    not in the same order or some datasets have no model.
    """
    values = np.asarray(values, dtype=float)
    n_rows, n_columns = values.shape
    figure = Figure(figsize=(1.5 * n_columns + 3, 0.9 * n_rows + 2.2), layout="constrained")
    axes = figure.add_subplot()
    colour_map = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = axes.imshow(np.ma.masked_invalid(values), cmap=colour_map, vmin=0, vmax=100, aspect="auto")
    figure.colorbar(image, ax=axes, label=metric_name)
    for row in range(n_rows):
        for column in range(n_columns):
            value = values[row, column]
            text = "-" if np.isnan(value) else f"{value:.1f}"
            if cell_text is not None:
                text = cell_text[row][column]
            colour = "black" if np.isnan(value) or value > 60 else "white"
            axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=10)
    for row, column in in_domain:
        # Inset, so that the outlines of two diagonal neighbours never touch at a corner.
        axes.add_patch(Rectangle((column - 0.45, row - 0.45), 0.9, 0.9, fill=False, edgecolor="red", linewidth=2.5))
    axes.set_xticks(range(n_columns), labels=column_labels, rotation=30, ha="right")
    axes.set_yticks(range(n_rows), labels=row_labels)
    axes.set_xlabel("evaluated on")
    axes.set_ylabel("fine-tuned on")
    axes.set_title(title + (" (in-domain outlined)" if in_domain else ""))
    if footnote:
        figure.supxlabel(textwrap.fill(footnote, width=int(14 * figure.get_figwidth())), fontsize=8)
    save_png(figure, path)
    return figure


def plot_probe_changes(
    scores: np.ndarray,
    changes: np.ndarray,
    row_labels: Sequence[str],
    probe_labels: Sequence[str],
    path: str | os.PathLike,
    metric_name: str = "F1",
    title: str = "Robustness probes: change from the unprobed score",
) -> Figure:
    """One row per (model -> dataset) pair, one column per probe; each cell coloured by its change from the
    unprobed score (red: the probe costs points, blue: it gains some, white: no change) and labelled with the
    probed score and the change. NaN cells (not computed, or failed) are grey and marked "-"."""
    scores, changes = np.asarray(scores, dtype=float), np.asarray(changes, dtype=float)
    n_rows, n_columns = changes.shape
    limit = max(10.0, float(np.nanmax(np.abs(changes)))) if np.isfinite(changes).any() else 10.0
    figure = Figure(figsize=(1.7 * n_columns + 4, 0.55 * n_rows + 2.2), layout="constrained")
    axes = figure.add_subplot()
    colour_map = matplotlib.colormaps["RdBu"].with_extremes(bad="lightgrey")
    image = axes.imshow(np.ma.masked_invalid(changes), cmap=colour_map, vmin=-limit, vmax=limit, aspect="auto")
    figure.colorbar(image, ax=axes, label=f"change in {metric_name} (points)")
    for row in range(n_rows):
        for column in range(n_columns):
            change = changes[row, column]
            if np.isnan(change):
                text = "-"
            else:
                text = f"{scores[row, column]:.1f} ({change:+.1f})"
            colour = "white" if not np.isnan(change) and abs(change) > 0.6 * limit else "black"
            axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=9)
    axes.set_xticks(range(n_columns), labels=probe_labels, rotation=20, ha="right")
    axes.set_yticks(range(n_rows), labels=row_labels)
    axes.set_xlabel("probe")
    axes.set_ylabel("fine-tuned on -> evaluated on")
    axes.set_title(f"{title}\n(cell: probed {metric_name} (change))")
    save_png(figure, path)
    return figure


def plot_overlap_buckets(
    values: np.ndarray,
    intervals: np.ndarray,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    bucket_labels: Sequence[str],
    path: str | os.PathLike,
    metric_name: str = "HasAns F1",
    in_domain: Sequence[tuple[int, int]] = (),
    title: str = "Score by question-context overlap",
) -> Figure:
    """One panel per column (evaluation set): `values[row, column, bucket]` against the bucket, one line per
    row (model) with its `intervals[row, column, bucket] = (low, high)` as error bars; NaN points (an empty
    bucket, a missing cell) are left out. The `in_domain` (row, column) lines are drawn thicker."""
    values, intervals = np.asarray(values, dtype=float), np.asarray(intervals, dtype=float)
    n_rows, n_columns, n_buckets = values.shape
    figure = Figure(figsize=(3.6 * n_columns + 1.5, 4.2), layout="constrained")
    panels = figure.subplots(1, n_columns, sharey=True, squeeze=False)[0]
    colours = matplotlib.colormaps["tab10"]
    in_domain = set(in_domain)
    for column, axes in enumerate(panels):
        for row in range(n_rows):
            # Each model a little to the side, so that the error bars of close scores stay apart.
            x = np.arange(n_buckets) + 0.15 * (row - (n_rows - 1) / 2) / max(1, n_rows)
            y = values[row, column]
            errors = np.abs(intervals[row, column].T - y)
            axes.errorbar(x, y, yerr=errors, marker="o", capsize=3, color=colours(row % 10),
                          linewidth=2.5 if (row, column) in in_domain else 1.2,
                          label=row_labels[row] + (" (in-domain)" if (row, column) in in_domain else ""))
        axes.set_xticks(range(n_buckets), labels=bucket_labels)
        axes.set_xlabel("overlap bucket")
        axes.set_title(f"evaluated on {column_labels[column]}")
        axes.set_ylim(-3, 103)  # points at 0 or 100 stay visible
        axes.grid(alpha=0.3)
    panels[0].set_ylabel(metric_name)
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles[:n_rows], [label.removesuffix(" (in-domain)") for label in labels[:n_rows]],
                  loc="outside right upper", title="fine-tuned on")
    figure.suptitle(title + " (thick line: in-domain)" if in_domain else title)
    save_png(figure, path)
    return figure
