"""The one registry of generated artefacts (:func:`numerics.runtime.registry.artefact`) and the verified user
cache behind it. The only place in :mod:`numerics` that calls the generator in :mod:`derive`.
"""
