"""DLRC (Lu et al. 2026, Section 3): one module per component, names as in the paper.

On board: :mod:`.recognizer` (cross-polytope LSH signatures), :mod:`.selector`
(intra-satellite de-duplication), :mod:`.arbiter` (inter-satellite de-duplication
and dense assignment map), :mod:`.filter` (entropy coding of the retained latent
vectors). On the ground: :mod:`.reconstructor`. :mod:`.bitstream` is the container.
"""
