"""Runner-side helpers for pack actions (``st2common.runners``)."""
