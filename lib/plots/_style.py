"""What every figure of the toolkit shares: saving, colours, legends, log axes."""
from __future__ import annotations

import io as _io
from pathlib import Path
from typing import Sequence


def save_figure(fig, out_path: str | Path | None, dpi: int = 120):
    """Lay out and, when ``out_path`` is given, write the PNG atomically (folders
    created): a figure is a result, and results are never left half-written."""
    fig.tight_layout()
    if out_path is not None:
        from ..io import atomic_write_bytes

        buf = _io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        atomic_write_bytes(Path(out_path), buf.getvalue())
    return fig


def colors(labels: Sequence[str]) -> dict[str, tuple]:
    """One stable colour per label, in order."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(labels)}


def legend_outside(ax, fontsize: int = 8, title: str | None = None):
    """Legend to the right of the axes, never over the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=fontsize,
                     title=title, title_fontsize=fontsize, frameon=False)


def log_y(ax) -> None:
    """Log y axis whose labels never overlap: decades only on long ranges (the
    default labels every minor tick too), a few evenly spaced plain labels when the
    data span less than a decade (where decade ticks would leave one label or none)."""
    from matplotlib.ticker import MaxNLocator, NullFormatter, NullLocator, ScalarFormatter

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.yaxis.set_minor_formatter(NullFormatter())
    if hi / max(lo, 1e-300) < 10:
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_minor_locator(NullLocator())
        fmt = ScalarFormatter()
        fmt.set_powerlimits((-2, 3))
        ax.yaxis.set_major_formatter(fmt)
