// Quickstart: create a session and stream one turn. Usage: quickstart HOST:PORT WORKSPACE
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/kodad/kodad/clients/go"
	kodav1 "github.com/kodad/kodad/clients/go/gen/koda/v1"
)

func main() {
	client, err := kodad.Dial(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	session, err := client.CreateSession(ctx, &kodav1.Session{Workspace: os.Args[2]})
	if err != nil {
		log.Fatal(err)
	}
	for event, err := range client.RunTurn(ctx, session.Id, "hello from Go", kodad.Handlers{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(event.GetTextDelta().GetText())
	}
	fmt.Println()
}
