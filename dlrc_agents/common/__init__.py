"""What every group of the DLRC layer stands on: reading scenes (:mod:`.data`), images as tensors and
their quality (:mod:`.imaging`), R–D measures and Bjøntegaard deltas (:mod:`.measures`), and the
schema parts the kinds share (:mod:`.config`). Imports nothing else of ``dlrc_agents``."""
