"""stopnet: joint customs operations against counterfeit goods sold online."""

__version__ = "0.1.0"
