"""The pluginname plugin for polymodal."""

__version__ = "0.1.0"
