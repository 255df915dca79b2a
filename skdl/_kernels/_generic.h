/* One name for a helper's float and double versions.
 *
 * A kernel helper is written once, as a macro body over its element type T,
 * instantiated for float and double (name_float, name_double); a one-line
 * dispatcher then picks the version from the type of one pointer argument:
 *
 *     #define skdl_add3(m, a, b, c, out) SKDL_BY_TYPE(skdl_add3, out)(m, a, b, c, out)
 *
 * Cython declares the dispatcher once, with void pointers (it passes its
 * typed pointers unchanged and the C compiler checks them against the real
 * prototypes; a pointer of any other type does not compile), and fused code
 * calls it without an `if floating is float` branch. */
#ifndef SKDL_GENERIC_H
#define SKDL_GENERIC_H

#define SKDL_BY_TYPE(name, ptr) \
    _Generic((ptr), float *: name##_float, const float *: name##_float, \
                    double *: name##_double, const double *: name##_double)

#endif
