// Package webhook is Kubist's admission: defaulting and validation of the
// executor and policies stanzas of every kubist.io kind, and of what each
// kind checks beyond its schema. The manager's webhook server and the
// offline `kubist validate` run the same code.
package webhook
