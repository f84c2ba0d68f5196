"""Built-in feature plugins and connectors, each a pluggy plugin like any third party's."""
