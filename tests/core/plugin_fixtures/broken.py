"""A plugin whose import fails, as one with a missing dependency of its own would."""

raise ImportError("No module named 'qiao_warranty_backend'")
