"""Reading records from files, and turning records into batches."""
