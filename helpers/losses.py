"""Training losses and regularizers beyond cross-entropy, one section per document.

Each function documents its paper, the shapes it takes and the value ranges it expects.
"""

from __future__ import annotations
