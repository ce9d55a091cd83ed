//go:build manager_only

package main

import "github.com/spf13/cobra"

// commands are the manager alone (see the package comment).
func commands() []*cobra.Command { return []*cobra.Command{newManagerCommand()} }

// startup has nothing to do: only kubist dev wraps processes.
func startup() error { return nil }
