"""DLRC agents: learned codecs, Distributed Latent Representation Clustering, bitstreams, agents."""
