"""Channel connectors. Each channel is its own subpackage, imported only when enabled."""
