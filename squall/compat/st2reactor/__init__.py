"""Squall's stand-in for StackStorm's ``st2reactor`` (sensor API; arrives with sensors)."""
