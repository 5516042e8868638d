"""The seeded mutation fuzzer of the ground decoder and the scenario loader (:mod:`.campaign`):
``python -m dlrc_agents.fuzzing --bitstreams N --scenarios M --out DIR``. It stands on top of the
layer: it builds real streams with the method and the studies, then mutates them."""
