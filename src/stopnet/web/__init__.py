"""The web application: app factory, dependencies, security, templates and vendored static files."""
