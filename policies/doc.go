// Package policies is Kubist's policy engine: the registry of executors and
// policies that the webhook, the reconciler and the command-line tool share;
// Rego modules compiled once in a sandbox and evaluated per call; the chain
// that threads an executor's proposal through a resource's policies; and the
// parameter schemas that check and default every stanza.
package policies
