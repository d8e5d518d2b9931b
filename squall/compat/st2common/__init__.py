"""Squall's stand-in for StackStorm's ``st2common``: the parts pack actions import."""
