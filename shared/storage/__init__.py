"""Storage: the one module that talks to azure-data-tables (tables) and the tables the app keeps."""
