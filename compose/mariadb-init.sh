# Sourced by the MariaDB image's entrypoint once, when its volume is first initialised, after it
# has created the `dbkeep` user and its `dbkeep` database (the metadata store) from MARIADB_USER
# and MARIADB_DATABASE. `shop` stands for the application database that dbkeep backs up and
# restores: dbkeep needs every privilege on it (a failed restore is rolled back by dropping and
# re-creating it).
docker_process_sql <<'SQL'
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;
GRANT ALL PRIVILEGES ON shop.* TO 'dbkeep'@'%';
SQL
