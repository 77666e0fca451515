// pgx v4 probe for drivers_diff.py: pgxpool.ParseConfig(url) (so pool_* keys are consumed as a
// pgxpool app's are), then one connection with pgx.ConnectConfig and SELECT 1. Prints OK
// (exit 0) or ERROR ... (exit 1). Adapted from notes/dialects/clients/pgxcheck.go.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v4"
	"github.com/jackc/pgx/v4/pgxpool"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(os.Args[1])
	if err != nil {
		fmt.Println("ERROR parse:", err)
		os.Exit(1)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		fmt.Println("ERROR connect:", err)
		os.Exit(1)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		fmt.Println("ERROR query:", err)
		os.Exit(1)
	}
	fmt.Println("OK", one)
}
