"""The model family of docs/model.md as data: activations, readouts, label noise, weight decay, and the
whitelisted parser of the text that defines them. The bottom layer of :mod:`derive` (imports nothing above).
"""
