// FerryValidation: findings about checkpoint archives. Work in progress.
