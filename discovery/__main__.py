from discovery.cli import cli

cli()
