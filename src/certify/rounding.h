/* Outward rounding of a double to float, for bounds that must hold for the
 * real-number network (sound floating point). Below every certification file,
 * the bound engine (crown.c, alpha.c) included. */
#ifndef SK_CERTIFY_ROUNDING_H
#define SK_CERTIFY_ROUNDING_H

#include <math.h>

/* The float at or below / at or above the double v. */
static inline float sk_certify_down(double v)
{
    float f = (float)v;
    return (double)f > v ? nextafterf(f, -INFINITY) : f;
}
static inline float sk_certify_up(double v)
{
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

#endif
