import numpy as np
from scipy.special import erf

from derive import Model
from numerics.noise.tuple_packing import tuple_packed_covariance
from numerics.runtime.registry import tuple_module

p,k=2,2
eta=0.5
for flip in (0.0, 0.2):
    m = Model(student_activation="erf(x/sqrt(2))", teacher_activation="sign(x)", student_readout="1", teacher_readout="1", label_flip=flip)
    mod = tuple_module(m)
    rng=np.random.default_rng(1)
    A=rng.standard_normal((p+k,p+k)); C=A@A.T/4+0.3*np.eye(p+k)
    Q,R,T=C[:p,:p],C[p:,p:] if False else C[:p,p:],C[p:,p:]
    S=tuple_packed_covariance(mod,Q[None],R[None],T[None],eta,0.0,label_flip=flip)[0]
    n=2_000_000
    z=rng.multivariate_normal(np.zeros(p+k),C,size=n)
    lam,nu=z[:,:p],z[:,p:]
    y=np.sign(nu).sum(1)
    y=np.where(rng.random(n)<flip,-y,y)
    f=erf(lam/np.sqrt(2)).sum(1)
    E=(y-f)[:,None]*np.sqrt(2/np.pi)*np.exp(-lam**2/2)
    rows,cols=np.triu_indices(p)
    q=eta*(E[:,rows]*lam[:,cols]+E[:,cols]*lam[:,rows])
    r=eta*(E[:,:,None]*nu[:,None,:]).reshape(n,-1)
    X=np.concatenate([q,r],1)
    mc=np.cov(X.T)
    # standard error of covariance entries
    Xc=X-X.mean(0)
    se=np.sqrt(np.var(Xc[:,:,None]*Xc[:,None,:],axis=0)/n)
    print(flip, S.shape, np.max(np.abs(S-mc)/se), np.max(np.abs(mc)))
