"""The runtime every stage shares: configuration, session, stage contract, units, tables, tracking, console, resources and the fingerprints' module graph. It knows no stage."""
