package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/slack-go/slack"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// EventTypePrefix starts the type of every CloudEvent Kubist sends, e.g.
// io.kubist.release.promoted.
const EventTypePrefix = "io.kubist.release."

// colors of a Slack attachment by level.
var colors = map[Level]string{Info: "good", Warning: "warning", Error: "danger"}

// sendSlack posts a notification to a Slack incoming webhook.
func (n *Notifier) sendSlack(ctx context.Context, r Receiver, note Notification) error {
	fields := []slack.AttachmentField{{Title: "Phase", Value: note.Phase, Short: true}}
	if len(note.Weights) > 0 {
		fields = append(fields, slack.AttachmentField{Title: "Weights", Value: v1alpha1.SplitString(note.Weights), Short: true})
	}
	if note.User != "" {
		fields = append(fields, slack.AttachmentField{Title: "By", Value: note.User, Short: true})
	}
	msg := &slack.WebhookMessage{
		Text: fmt.Sprintf("[%s] %s: %s", note.Reason, note.Subject(), note.Message),
		Attachments: []slack.Attachment{{
			Color: colors[note.Level], Fallback: note.Message, Fields: fields,
			Footer: "Kubist", Ts: json.Number(strconv.FormatInt(note.Time.Unix(), 10)),
		}},
	}
	return slack.PostWebhookCustomHTTPContext(ctx, r.URL, n.opts.HTTPClient, msg)
}

// sendCloudEvent posts a notification as a structured CloudEvent. Its ID
// is derived from what it says, so a receiver can drop a retry of one it
// took already.
func (n *Notifier) sendCloudEvent(ctx context.Context, r Receiver, note Notification) error {
	opts := []cehttp.Option{cehttp.WithTarget(r.URL), cehttp.WithClient(*n.opts.HTTPClient)}
	if r.Token != "" {
		opts = append(opts, cehttp.WithHeader("Authorization", "Bearer "+r.Token))
	}
	protocol, err := cehttp.New(opts...)
	if err != nil {
		return err
	}
	c, err := cloudevents.NewClient(protocol)
	if err != nil {
		return err
	}
	e := cloudevents.NewEvent()
	e.SetID(eventID(note))
	e.SetType(EventTypePrefix + strings.ToLower(note.Reason))
	e.SetSource(fmt.Sprintf("/apis/kubist.io/v1alpha1/namespaces/%s/%s/%s", note.Namespace, strings.ToLower(note.Kind)+"s", note.Name))
	e.SetSubject(note.Name)
	e.SetTime(note.Time)
	e.SetExtension("level", note.Level.String())
	if err := e.SetData(cloudevents.ApplicationJSON, note); err != nil {
		return err
	}
	if res := c.Send(cloudevents.WithEncodingStructured(ctx), e); !cloudevents.IsACK(res) {
		return fmt.Errorf("CloudEvent %s not accepted: %w", e.ID(), res)
	}
	return nil
}

// eventID identifies a notification by its release, reason and time.
func eventID(note Notification) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%s/%s/%s", note.Kind, note.Namespace, note.Name, note.Reason, note.Time.UTC().Format("2006-01-02T15:04:05.000000Z")))
	return hex.EncodeToString(sum[:16])
}
