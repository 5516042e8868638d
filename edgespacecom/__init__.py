"""EdgeSpaceCom: discrete-event simulator of Earth-observation constellations.

The network half of the tool (orbits, inter-satellite links, topology, routing,
sync rounds, ground segment). See the README for the scenario format.
"""

__version__ = "0.1.0"
