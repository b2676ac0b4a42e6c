# Jinja2 templates and static files of the web UI, shipped inside the package as discovery.templates.
