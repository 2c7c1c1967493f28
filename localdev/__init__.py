"""Local stand-ins and runners: a Genesys Cloud emulator, an external-system stub, and
docker-less equivalents of `sam local invoke` that read routing from template.yaml."""
