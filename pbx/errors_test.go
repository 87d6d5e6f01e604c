package pbx_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/callpop/callpop/pbx"
)

func TestErrorMatchesSentinelOfItsStatus(t *testing.T) {
	t.Parallel()
	sentinels := []error{pbx.ErrInvalidParameters, pbx.ErrInvalidToken, pbx.ErrUnavailable, pbx.ErrNotConfigured, pbx.ErrBadResponse}
	for _, tc := range []struct {
		status int
		want   error
	}{
		{400, pbx.ErrInvalidParameters},
		{401, pbx.ErrInvalidToken},
		{500, pbx.ErrUnavailable},
		{503, pbx.ErrUnavailable},
		{403, nil},
		{404, nil},
	} {
		err := fmt.Errorf("makeCall: %w", &pbx.Error{Status: tc.status, Message: "x"})
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("status %d: errors.Is(%v) = %v", tc.status, s, got)
			}
		}
		var e *pbx.Error
		if !errors.As(err, &e) || e.Status != tc.status {
			t.Errorf("status %d: errors.As gave %v", tc.status, e)
		}
	}
}
