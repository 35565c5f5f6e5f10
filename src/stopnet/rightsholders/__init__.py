"""Rights holders and platforms: brands, identification guides, contact points and verification requests."""
