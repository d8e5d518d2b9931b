"""Squall's stand-in for StackStorm's ``st2reactor``: the sensor API packs import."""
