"""The measuring kinds and their figures: ``rd`` (:mod:`.rd`: DLRC's R–D, captures off the ideal
protocol, revisits), ``dlrc_ablation`` (:mod:`.ablation`), ``codec_rd`` (:mod:`.codec_rd`),
``downstream`` (:mod:`.downstream`, :mod:`.segmentation`, :mod:`.task_measures`) and ``multiview``
(:mod:`.multiview`), with the geometry they draw captures from (:mod:`.overlap`, :mod:`.capture`) and
their schemas (:mod:`.config`). A new study goes here, with its schema in :mod:`.config` and one
``register_kind`` call in :mod:`dlrc_agents.kinds`.
"""
