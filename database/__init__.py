"""Every query of the system lives here: database.mongo for MongoDB, database.mysql for MySQL."""
