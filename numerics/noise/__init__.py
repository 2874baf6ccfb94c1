"""The noise of the overlaps at finite N: covariance of one step's increments, packed for the SDE, with
per-unit and trained readouts.
"""
