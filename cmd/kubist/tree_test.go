//go:build !manager_only

package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRows(t *testing.T) {
	for _, tc := range []struct {
		text  string
		width int
		want  int
	}{
		{"a\nb\n", 80, 2},
		{"a\nb\n", 0, 2},
		{strings.Repeat("x", 80) + "\n", 80, 1},
		{strings.Repeat("x", 81) + "\n", 80, 2},
		{"├── " + strings.Repeat("é", 77) + "\n", 80, 2},
		{"no newline", 80, 1},
	} {
		if got := rows(tc.text, tc.width); got != tc.want {
			t.Errorf("rows(%q, %d) = %d, want %d", tc.text, tc.width, got, tc.want)
		}
	}
}

func TestRedraw(t *testing.T) {
	if got := redraw(0, 5, 40); got != "" {
		t.Errorf("a first frame erases nothing, got %q", got)
	}
	if got, want := redraw(5, 6, 40), "\033[5F\033[J"; got != want {
		t.Errorf("redraw(5, 6, 40) = %q, want %q: up five rows, clear below", got, want)
	}
	if got, want := redraw(50, 6, 40), "\033[H\033[2J"; got != want {
		t.Errorf("a previous frame taller than the terminal clears the screen: got %q", got)
	}
	if got, want := redraw(5, 45, 40), "\033[H\033[2J"; got != want {
		t.Errorf("a next frame taller than the terminal clears the screen: got %q", got)
	}
	if got, want := redraw(5, 6, 0), "\033[5F\033[J"; got != want {
		t.Errorf("an unknown height still redraws in place: got %q", got)
	}
}

// A pipe gets each new frame appended; a terminal gets it drawn over the
// previous one, whatever was printed above it left alone; an unchanged
// frame is not drawn again.
func TestWatchRendered(t *testing.T) {
	clock := regexp.MustCompile(`\d\d:\d\d:\d\d  `)
	for terminal, want := range map[bool]string{
		false: "(title)\none\n\n(title)\ntwo\nthree\n",
		true:  "(title)\none\n\033[2F\033[J(title)\ntwo\nthree\n",
	} {
		frames := []string{"one\n", "one\n", "two\nthree\n", "two\nthree\n"}
		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		i := 0
		render := func(context.Context) (string, error) {
			// Once cancelled, the loop may still draw once more before it
			// sees it (both its cases ready): the last frame again.
			text := frames[min(i, len(frames)-1)]
			if i++; i == len(frames) {
				cancel()
			}
			return text, nil
		}
		if err := watchRendered(ctx, &out, time.Millisecond, terminal, "(title)", render); err != nil {
			t.Fatal(err)
		}
		if got := clock.ReplaceAllString(out.String(), ""); got != want {
			t.Errorf("terminal=%v: got %q, want %q", terminal, got, want)
		}
	}
}
