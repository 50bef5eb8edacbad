"""plotly.js served from the installed plotly package (no CDN: works offline)."""

from __future__ import annotations

from pathlib import Path

import plotly

PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
VERSION = plotly.__version__
